"""Every AWS API call the moto server receives, from any process: the program, the provider host, Packer.

A WSGI layer in front of moto reads the service from the request's SigV4 credential scope and the
operation from the query-protocol `Action` parameter or the JSON protocol's X-Amz-Target. Calls
signed with the test world's own key (its setup and its assertions) are left out.
"""

import io
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

WORLD_ACCESS_KEY = "world"
READ_PREFIXES = ("Describe", "Get", "List")
CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/[^/]+/([^/]+)/aws4_request")


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    access_key: str


def _operation(environ: dict[str, Any], body: bytes) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return target.rsplit(".", 1)[-1]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    form = parse_qs(body.decode(errors="replace")) if body else {}
    action = (form.get("Action") or query.get("Action") or [""])[0]
    return action or environ.get("PATH_INFO", "").rstrip("/").rsplit("/", 1)[-1]


class CallRecorder:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.every_operation: set[tuple[str, str]] = set()
        """(service, operation) of every call since the server started, whatever test cleared `calls`."""
        self._lock = threading.Lock()

    def middleware(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        def record(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            credential = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
            if credential and credential.group(1) != WORLD_ACCESS_KEY:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = environ["wsgi.input"].read(length) if length else b""
                environ["wsgi.input"] = io.BytesIO(body)
                call = Call(credential.group(2), _operation(environ, body), credential.group(1))
                with self._lock:
                    self.calls.append(call)
                    self.every_operation.add((call.service, call.operation))
            return app(environ, start_response)

        return record

    def operations(self) -> list[str]:
        with self._lock:
            return [call.operation for call in self.calls]

    def writes(self) -> list[str]:
        return [operation for operation in self.operations() if not operation.startswith(READ_PREFIXES)]

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
