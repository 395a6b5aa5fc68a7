"""Stack configuration: read from Pulumi config and validated before anything is built.

Pulumi.yaml declares every key with its type and default; Pulumi's getters parse
values but do not check shapes (`get_object` accepts any JSON), so every rule the
program relies on is checked here, and a bad value stops the program with one line
that names the key (P8).
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pulumi
import yaml

from components import formats
from components.aws import AwsTarget

PROJECT = "bluegreen"
COLORS = ("blue", "green")

# Semver-like, and safe anywhere the version lands (AMI names, tags, Packer argv).
VERSION_PATTERN = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z]+(\.[0-9A-Za-z]+)*)?$")
APP_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,11}$")
ROUTE_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]{0,9}$")
# Target groups are auto-named "<app>-<color>-<route>-<7 random characters>", and AWS allows 32.
TARGET_GROUP_NAME_LIMIT = 32 - len("-1234567")
RULE_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]+:listener-rule/.+$")
AMI_PATTERN = re.compile(r"^ami-[0-9a-f]{8,17}$")
PROTOCOLS = ("HTTP", "HTTPS")
RESERVED_HEADERS = {"host", "authorization", "cookie", "content-length", "content-type", "transfer-encoding"}
SECRET_KEYS = ("http_proxy", "artifact_repository", "smoke_checks")
"""May carry credentials or tokens: never shown in an error, stored and passed on as Pulumi secrets."""


class ConfigError(pulumi.RunError):
    """A bad config value; RunError makes Pulumi print the message alone, without a stack trace."""


def _key(name: str) -> str:
    return f"{PROJECT}:{name}"


@dataclass(frozen=True, kw_only=True)
class Route:
    """One production listener rule and the settings of the target group each color puts behind it."""

    name: str
    rule_arn: str
    port: int = 80
    protocol: str = "HTTP"
    health_check_path: str = "/health"
    health_check_interval: int = 15
    healthy_threshold: int = 3
    unhealthy_threshold: int = 3
    deregistration_delay: int = 60
    test_priorities: dict[str, int] | None = None
    """Priority of each color's test rule on the route's listener; None for no test route."""


@dataclass(frozen=True, kw_only=True)
class Rollout:
    """How the live stack's switch shifts traffic, and what rolls it back."""

    steps: tuple[int, ...]
    """Percent of each rule's traffic on the new color after each step; the last is 100."""
    step_wait_seconds: int
    bake_seconds: int
    """How long the alarms are watched after the last step."""
    alarms: tuple[str, ...]
    acknowledged_rollback: str = ""
    """The time of an automatic rollback whose release may be promoted again (rollback_acknowledged)."""


@dataclass(frozen=True, kw_only=True)
class Capacity:
    min_size: int
    max_size: int
    desired: int


@dataclass(frozen=True, kw_only=True)
class ImageBuild:
    """How Packer bakes the golden image when no image_id is given."""

    source_ami_name: str
    source_ami_owners: tuple[str, ...]
    ssh_username: str
    build_timeout_seconds: int
    artifact_repository: str
    artifact_group_id: str
    artifact_id: str
    http_proxy: str

    def variables(self) -> dict[str, Any]:
        """The template variables that shape the image: a change is a new image."""
        return {
            "source_ami_name": self.source_ami_name,
            "source_ami_owners": list(self.source_ami_owners),
            "ssh_username": self.ssh_username,
            "artifact_repository": self.artifact_repository,
            "artifact_group_id": self.artifact_group_id,
            "artifact_id": self.artifact_id,
            "http_proxy": self.http_proxy,
        }


@dataclass(frozen=True, kw_only=True)
class Hooks:
    """Commands run around the traffic switch, CodeDeploy's names: each one a shell command line."""

    before_allow_traffic: tuple[str, ...] = ()
    after_allow_traffic: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything one color's stack needs, already validated."""

    app_name: str
    color: str
    active_color: str
    version: str
    region: str
    capacity: Capacity
    idle_capacity: int | None
    instance_type: str
    key_name: str | None
    image_id: str | None
    vpc_id: str
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    instance_profile: str
    health_check_grace_period: int
    routes: tuple[Route, ...]
    gate_timeout_seconds: int
    gate_poll_seconds: int
    smoke_checks: tuple[dict[str, Any], ...]
    hooks: Hooks
    hook_timeout_seconds: int
    rollout: Rollout
    test_header: str
    endpoint_url: str
    image_build: ImageBuild

    @property
    def drain_seconds(self) -> int:
        """How long the old color keeps serving in-flight requests after a switch."""
        return max(route.deregistration_delay for route in self.routes)

    @property
    def rule_arns(self) -> dict[str, str]:
        return {route.name: route.rule_arn for route in self.routes}

    @property
    def is_live(self) -> bool:
        """Live by intent (config); what the rules point at in AWS is read separately."""
        return self.color == self.active_color

    @property
    def target(self) -> AwsTarget:
        return AwsTarget(region=self.region, endpoint_url=self.endpoint_url)


def _choice(value: str, key: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        options = " or ".join(f"'{option}'" for option in allowed)
        raise ConfigError(f"{_key(key)} must be {options}, got {value!r}")
    return value


def _matching(value: str, key: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.fullmatch(value):
        raise ConfigError(f"{_key(key)} must be {what}, got {value!r}")
    return value


def _checked(config: pulumi.Config, key: str, check: Callable[[str], bool], what: str, optional: bool = False) -> str:
    value = config.require(key)
    if (optional and not value) or check(value):
        return value
    shown = "a value not shown here (it is a secret)" if key in SECRET_KEYS else repr(value)
    raise ConfigError(f"{_key(key)} must be {'empty or ' if optional else ''}{what}, got {shown}")


def _formatted(config: pulumi.Config, key: str, kind: str, optional: bool = False) -> str:
    return _checked(config, key, lambda value: formats.matches(kind, value), f"a {kind}", optional)


def _int(config: pulumi.Config, key: str, minimum: int = 0) -> int:
    raw = config.require(key)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{_key(key)} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{_key(key)} must be at least {minimum}, got {value}")
    return value


def _json(config: pulumi.Config, key: str) -> Any:
    raw = config.require(key)
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise ConfigError(f"{_key(key)} must be valid JSON, got {raw!r}") from None


def _ids(config: pulumi.Config, key: str, prefix: str) -> tuple[str, ...]:
    values = _json(config, key)
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{_key(key)} must be a non-empty list of {prefix}... ids")
    for value in values:
        if not isinstance(value, str) or not re.fullmatch(f"{prefix}[0-9a-f]{{8,17}}", value):
            raise ConfigError(f"{_key(key)} must hold {prefix}... ids, got {value!r}")
    return tuple(values)


def _capacity(config: pulumi.Config) -> Capacity:
    min_size = _int(config, "min_size")
    max_size = _int(config, "max_size")
    desired = _int(config, "desired_capacity", minimum=1)
    if min_size > desired:
        raise ConfigError(f"{_key('min_size')} ({min_size}) must not exceed {_key('desired_capacity')} ({desired})")
    if desired > max_size:
        raise ConfigError(f"{_key('desired_capacity')} ({desired}) must not exceed {_key('max_size')} ({max_size})")
    return Capacity(min_size=min_size, max_size=max_size, desired=desired)


def _idle_capacity(config: pulumi.Config, capacity: Capacity) -> int | None:
    raw = config.require("idle_capacity")
    if raw == "full":
        return None
    if not raw.isdigit() or int(raw) > capacity.max_size:
        raise ConfigError(
            f"{_key('idle_capacity')} must be 'full' or a whole number from 0 to "
            f"{_key('max_size')} ({capacity.max_size}), got {raw!r}"
        )
    return int(raw)


_ROUTE_FIELDS = {field.name: field for field in fields(Route) if field.name != "name"}


def _route(name: str, raw: Any) -> Route:
    key = f"routes.{name}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{_key(key)} must be a map of route settings")
    for field_name in raw:
        if field_name not in _ROUTE_FIELDS:
            known = ", ".join(_ROUTE_FIELDS)
            raise ConfigError(f"{_key(f'{key}.{field_name}')} is not a route setting (known: {known})")
    rule_arn = raw.get("rule_arn")
    if not isinstance(rule_arn, str) or not RULE_ARN_PATTERN.fullmatch(rule_arn):
        raise ConfigError(f"{_key(f'{key}.rule_arn')} must be the ARN of an existing listener rule, got {rule_arn!r}")
    values: dict[str, Any] = {"name": name, "rule_arn": rule_arn}
    for field_name in ("port", "health_check_interval", "healthy_threshold", "unhealthy_threshold"):
        if field_name in raw:
            values[field_name] = _route_int(raw[field_name], f"{key}.{field_name}", 1)
    if "deregistration_delay" in raw:
        values["deregistration_delay"] = _route_int(raw["deregistration_delay"], f"{key}.deregistration_delay", 0)
    if values.get("port", 1) > 65535:
        raise ConfigError(f"{_key(f'{key}.port')} must be a port number (1-65535), got {values['port']}")
    if "protocol" in raw:
        values["protocol"] = _choice(raw["protocol"], f"{key}.protocol", PROTOCOLS)
    if "test_priorities" in raw:
        values["test_priorities"] = _test_priorities(raw["test_priorities"], f"{key}.test_priorities")
    if "health_check_path" in raw:
        path = raw["health_check_path"]
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigError(f"{_key(f'{key}.health_check_path')} must be a path starting with '/', got {path!r}")
        values["health_check_path"] = path
    return Route(**values)


def _test_priorities(raw: Any, key: str) -> dict[str, int]:
    if not isinstance(raw, dict) or set(raw) != set(COLORS):
        raise ConfigError(f"{_key(key)} must give a listener rule priority for blue and for green")
    priorities = {color: _route_int(raw[color], f"{key}.{color}", 1) for color in COLORS}
    for color, priority in priorities.items():
        if priority > 50000:
            raise ConfigError(f"{_key(f'{key}.{color}')} must be a rule priority (1-50000), got {priority}")
    return priorities


def _route_int(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{_key(key)} must be a whole number of at least {minimum}, got {value!r}")
    return value


def _routes(config: pulumi.Config, app_name: str) -> tuple[Route, ...]:
    raw = _json(config, "routes")
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{_key('routes')} must map at least one route name to its listener rule settings")
    for name in raw:
        _matching(name, "routes", ROUTE_NAME_PATTERN, "keyed by route names of lowercase letters and digits (<= 10)")
        longest = f"{app_name}-{max(COLORS, key=len)}-{name}"
        if len(longest) > TARGET_GROUP_NAME_LIMIT:
            raise ConfigError(
                f"{_key('app_name')} and {_key(f'routes.{name}')} are too long together: target group "
                f"'{longest}' has {len(longest)} characters, at most {TARGET_GROUP_NAME_LIMIT} fit AWS's 32 "
                "with Pulumi's random suffix"
            )
    routes = tuple(_route(name, settings) for name, settings in raw.items())
    seen: dict[str, str] = {}
    for route in routes:
        if route.rule_arn in seen:
            raise ConfigError(
                f"{_key(f'routes.{route.name}.rule_arn')} is the rule of route {seen[route.rule_arn]} too: "
                "each route needs a rule of its own"
            )
        seen[route.rule_arn] = route.name
    taken: dict[int, str] = {}
    for route in routes:
        for color, priority in (route.test_priorities or {}).items():
            where = f"routes.{route.name}.test_priorities.{color}"
            if priority in taken:
                raise ConfigError(f"{_key(where)} ({priority}) is also {_key(taken[priority])}: priorities are unique")
            taken[priority] = where
    return routes


_SMOKE_DEFAULTS: dict[str, Any] = {
    "url": None,
    "expected_status": 200,
    "body_pattern": "",
    "host": "",
    "via_test_route": False,
}


def _smoke_check(index: int, raw: Any) -> dict[str, Any]:
    key = f"smoke_checks[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{_key(key)} must be a map with url, expected_status, body_pattern, host")
    for field_name in raw:
        if field_name not in _SMOKE_DEFAULTS:
            raise ConfigError(
                f"{_key(f'{key}.{field_name}')} is not a smoke check setting (known: {', '.join(_SMOKE_DEFAULTS)})"
            )
    check = {**_SMOKE_DEFAULTS, **raw}
    if not isinstance(check["url"], str) or not formats.is_http_url(check["url"]):
        raise ConfigError(f"{_key(f'{key}.url')} must be an http:// or https:// URL (not shown: it is a secret)")
    status = check["expected_status"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ConfigError(f"{_key(f'{key}.expected_status')} must be an HTTP status (100-599), got {status!r}")
    try:
        re.compile(check["body_pattern"])
    except (re.error, TypeError):
        raise ConfigError(
            f"{_key(f'{key}.body_pattern')} must be a regular expression, got {check['body_pattern']!r}"
        ) from None
    if not isinstance(check["host"], str) or (check["host"] and not formats.is_host_header(check["host"])):
        raise ConfigError(f"{_key(f'{key}.host')} must be empty or a host name[:port], got {check['host']!r}")
    if not isinstance(check["via_test_route"], bool):
        raise ConfigError(f"{_key(f'{key}.via_test_route')} must be true or false, got {check['via_test_route']!r}")
    return check


def _smoke_checks(config: pulumi.Config) -> tuple[dict[str, Any], ...]:
    raw = _json(config, "smoke_checks")
    if not isinstance(raw, list):
        raise ConfigError(f"{_key('smoke_checks')} must be a list of checks (url, expected_status, body_pattern, host)")
    return tuple(_smoke_check(index, check) for index, check in enumerate(raw))


def _rollout(config: pulumi.Config) -> Rollout:
    steps = _json(config, "traffic_steps")
    if (
        not isinstance(steps, list)
        or not steps
        or not all(isinstance(step, int) and not isinstance(step, bool) and 0 < step <= 100 for step in steps)
        or steps != sorted(set(steps))
        or steps[-1] != 100
    ):
        raise ConfigError(
            f"{_key('traffic_steps')} must be rising percentages from 1 to 100 that end at 100 (e.g. [10, 50, 100]), "
            f"got {steps!r}"
        )
    alarms = _json(config, "rollback_alarms")
    if not isinstance(alarms, list) or not all(isinstance(name, str) and 0 < len(name) <= 255 for name in alarms):
        raise ConfigError(f"{_key('rollback_alarms')} must be a list of CloudWatch alarm names, got {alarms!r}")
    return Rollout(
        steps=tuple(steps),
        step_wait_seconds=_int(config, "step_wait_seconds"),
        bake_seconds=_int(config, "bake_seconds"),
        alarms=tuple(alarms),
        acknowledged_rollback=config.require("rollback_acknowledged"),
    )


def _hooks(config: pulumi.Config) -> Hooks:
    raw = _json(config, "hooks")
    known = [field.name for field in fields(Hooks)]
    if not isinstance(raw, dict):
        raise ConfigError(f"{_key('hooks')} must be a map with {' and '.join(known)}")
    for name, commands in raw.items():
        if name not in known:
            raise ConfigError(f"{_key(f'hooks.{name}')} is not a hook (known: {', '.join(known)})")
        if not isinstance(commands, list) or not all(
            isinstance(command, str) and command.strip() and "\0" not in command for command in commands
        ):
            raise ConfigError(f"{_key(f'hooks.{name}')} must be a list of non-empty command lines")
    return Hooks(**{name: tuple(commands) for name, commands in raw.items()})


def _image_build(config: pulumi.Config) -> ImageBuild:
    owners = _json(config, "source_ami_owners")
    owner_kind = "AMI owner (an account id, self, amazon or aws-marketplace)"
    if not isinstance(owners, list) or not owners:
        raise ConfigError(f"{_key('source_ami_owners')} must be a non-empty list of account ids or aliases")
    for owner in owners:
        if not isinstance(owner, str) or not formats.matches(owner_kind, owner):
            raise ConfigError(f"{_key('source_ami_owners')} must hold an {owner_kind} each, got {owner!r}")
    return ImageBuild(
        source_ami_name=_formatted(config, "source_ami_name", "AMI name filter"),
        source_ami_owners=tuple(owners),
        ssh_username=_formatted(config, "ssh_username", "POSIX user name"),
        build_timeout_seconds=_int(config, "build_timeout_seconds", minimum=1),
        artifact_repository=_checked(
            config,
            "artifact_repository",
            formats.is_maven_repository,
            "an s3://bucket/path or https:// Maven repository URL",
        ),
        artifact_group_id=_formatted(config, "artifact_group_id", "maven group id"),
        artifact_id=_formatted(config, "artifact_id", "maven artifact id"),
        http_proxy=_checked(
            config, "http_proxy", formats.is_proxy, "http(s)://[user:password@]host:port", optional=True
        ),
    )


def _region() -> str:
    region = pulumi.Config("aws").require("region")
    if not formats.matches("AWS region", region):
        raise ConfigError(f"aws:region must be an AWS region such as ap-northeast-1, got {region!r}")
    return region


def _color(config: pulumi.Config, project_dir: Path) -> str:
    """A stack's own color: never shared (two stacks of one color would fight), never another stack's name."""
    explicit = config.require("color")
    stack = pulumi.get_stack()
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())
    if _project_value((project.get("config") or {}).get("color")):
        raise ConfigError(f"{_key('color')} is set in Pulumi.yaml, where both stacks read it: set it per stack only")
    if explicit:
        if stack in COLORS and explicit != stack:
            raise ConfigError(f"{_key('color')} is '{explicit}' for the stack named {stack}: one stack per color")
        return _choice(explicit, "color", COLORS)
    if stack not in COLORS:
        raise ConfigError(f"{_key('color')} must be set to 'blue' or 'green': stack '{stack}' is not named for a color")
    return stack


def _project_value(entry: Any) -> Any:
    if isinstance(entry, dict):
        return entry.get("value", entry.get("default"))
    return entry


def _active_color(config: pulumi.Config, project_dir: Path) -> str:
    """The shared active_color, which may come from Pulumi.yaml only: a second home lets the stacks disagree."""
    value = _choice(config.require("active_color"), "active_color", COLORS)
    stack = pulumi.get_stack()
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    stack_config = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {} if stack_file.exists() else {}
    if _key("active_color") in stack_config:
        raise ConfigError(
            f"{_key('active_color')} is set in {stack_file.name}, but it is shared by both stacks and belongs in "
            f"Pulumi.yaml only: run `pulumi config rm active_color --stack {stack}`, then promote by editing "
            "Pulumi.yaml"
        )
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())
    declared = _project_value((project.get("config") or {}).get("active_color"))
    if value != declared:
        raise ConfigError(
            f"{_key('active_color')} is '{value}' for stack {stack} but '{declared}' in Pulumi.yaml: it is shared by "
            "both stacks and may be set in Pulumi.yaml only (not with --config, a stack file or an environment)"
        )
    return value


def load(project_dir: Path) -> Settings:
    """Reads and validates this stack's config; raises ConfigError naming the first bad key."""
    config = pulumi.Config()
    capacity = _capacity(config)
    image_id = config.require("image_id")
    app_name = _matching(config.require("app_name"), "app_name", APP_NAME_PATTERN, "lowercase letters, digits, '-'")
    return Settings(
        app_name=app_name,
        color=_color(config, project_dir),
        active_color=_active_color(config, project_dir),
        version=_matching(
            config.require("version"), "version", VERSION_PATTERN, "semver-like, e.g. 1.2.3 or 1.2.3-rc.1"
        ),
        region=_region(),
        capacity=capacity,
        idle_capacity=_idle_capacity(config, capacity),
        instance_type=_formatted(config, "instance_type", "EC2 instance type"),
        key_name=_formatted(config, "key_name", "EC2 key pair name", optional=True) or None,
        image_id=_matching(image_id, "image_id", AMI_PATTERN, "an AMI id (ami-...)") if image_id else None,
        vpc_id=_matching(config.require("vpc_id"), "vpc_id", re.compile(r"^vpc-[0-9a-f]+$"), "a VPC id (vpc-...)"),
        subnet_ids=_ids(config, "subnet_ids", "subnet-"),
        security_group_ids=_ids(config, "security_group_ids", "sg-"),
        instance_profile=_formatted(config, "instance_profile", "IAM instance profile name"),
        health_check_grace_period=_int(config, "health_check_grace_period"),
        routes=_routes(config, app_name),
        gate_timeout_seconds=_int(config, "gate_timeout_seconds", minimum=1),
        gate_poll_seconds=_int(config, "gate_poll_seconds", minimum=1),
        smoke_checks=_smoke_checks(config),
        hooks=_hooks(config),
        hook_timeout_seconds=_int(config, "hook_timeout_seconds", minimum=1),
        rollout=_rollout(config),
        test_header=_checked(
            config,
            "test_header",
            lambda name: bool(re.fullmatch(r"[A-Za-z0-9-]{1,40}", name)) and name.lower() not in RESERVED_HEADERS,
            "an HTTP header name of your own (not Host, Authorization, Cookie or Content-*)",
        ),
        endpoint_url=_checked(
            config, "endpoint_url", formats.is_endpoint, "an http(s)://host[:port] URL", optional=True
        ),
        image_build=_image_build(config),
    )
