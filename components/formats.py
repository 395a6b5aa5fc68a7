"""The real formats of the config values that reach Packer, Ansible, a URL or an AWS API.

Each value is checked against what its consumer accepts, so that one which is not (a `;`, a `$(`,
a space, a CR/LF) is refused at startup with the config key (P8). The image template passes the
values on as data besides, so a value these checks missed still never becomes code.
"""

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit

PATTERNS = {
    "maven group id": re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*"),
    "maven artifact id": re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*"),
    "POSIX user name": re.compile(r"[a-z_][a-z0-9_-]{0,31}"),
    "EC2 instance type": re.compile(r"[a-z][a-z0-9-]*\.[a-z0-9]+"),
    "EC2 key pair name": re.compile(r"[A-Za-z0-9_.@+=-]{1,255}"),
    "IAM instance profile name": re.compile(r"[A-Za-z0-9_+=,.@-]{1,128}"),
    "AMI name filter": re.compile(r"[A-Za-z0-9()\[\]./@_*?'-]{1,128}"),
    "AMI owner (an account id, self, amazon or aws-marketplace)": re.compile(r"[0-9]{12}|self|amazon|aws-marketplace"),
    "AWS region": re.compile(r"[a-z]{2}(-gov)?-[a-z]+-[0-9]"),
}
HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
URL_PATH = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")
USERINFO = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=%-]+(:[A-Za-z0-9._~!$&'()*+,;=%-]*)?")
S3_KEY = re.compile(r"[A-Za-z0-9._/-]*")
MAVEN_PATH = re.compile(r"[A-Za-z0-9._~%/-]*")


def matches(kind: str, value: str) -> bool:
    return bool(PATTERNS[kind].fullmatch(value))


def is_host(value: str) -> bool:
    """A DNS name or an IPv4 address, as a URL or a Host header may name it."""
    try:
        ipaddress.IPv4Address(value)
        return True
    except ValueError:
        labels = value.split(".")
        return len(value) <= 253 and all(HOST_LABEL.fullmatch(label) for label in labels)


def is_host_header(value: str) -> bool:
    """host or host:port; nothing a header could be split on (CR, LF)."""
    host, _, port = value.partition(":")
    return is_host(host) and (not port or (port.isdigit() and 0 < int(port) < 65536))


def _split(value: str) -> SplitResult | None:
    if any(character.isspace() or ord(character) < 32 for character in value):
        return None
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises on a port that is not a number
    except ValueError:
        return None
    return parts


def _userinfo_ok(parts: SplitResult) -> bool:
    userinfo = parts.netloc.rpartition("@")[0]
    return not userinfo or bool(USERINFO.fullmatch(userinfo))


def is_http_url(value: str, schemes: tuple[str, ...] = ("http", "https")) -> bool:
    """An http(s) URL to a host, with a path, an optional query and credentials; no fragment."""
    parts = _split(value)
    return bool(
        parts
        and parts.scheme in schemes
        and parts.hostname
        and is_host(parts.hostname)
        and _userinfo_ok(parts)
        and URL_PATH.fullmatch(parts.path)
        and URL_PATH.fullmatch(parts.query)
        and not parts.fragment
    )


def is_proxy(value: str) -> bool:
    """http(s)://[user:password@]host:port, as curl, yum and Ansible's environment read it."""
    parts = _split(value)
    return bool(
        parts
        and parts.scheme in ("http", "https")
        and parts.hostname
        and is_host(parts.hostname)
        and parts.port
        and _userinfo_ok(parts)
        and parts.path in ("", "/")
        and not parts.query
        and not parts.fragment
    )


def is_maven_repository(value: str) -> bool:
    """s3://bucket/path, or an https URL (credentials allowed), as community.general.maven_artifact takes."""
    parts = _split(value)
    if parts and parts.scheme == "s3":
        return bool(
            S3_BUCKET.fullmatch(parts.netloc)
            and S3_KEY.fullmatch(parts.path)
            and not parts.query
            and not parts.fragment
        )
    return bool(
        is_http_url(value, schemes=("https",)) and parts and MAVEN_PATH.fullmatch(parts.path) and not parts.query
    )


def is_endpoint(value: str) -> bool:
    parts = _split(value)
    return bool(is_http_url(value) and parts and parts.path in ("", "/") and not parts.query and not parts.username)
