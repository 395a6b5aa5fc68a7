"""Counts the AWS operations providers send, through botocore's before-call event."""

from collections.abc import Callable
from typing import Any


class CallRecorder:
    """Every AWS operation the providers' clients send, seen through botocore's before-call event."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def record(self, model: Any, **_: Any) -> None:
        self.calls.append((model.service_model.service_name, model.name))

    def operations(self) -> list[str]:
        return [operation for _, operation in self.calls]

    def writes(self) -> list[str]:
        return [op for op in self.operations() if not op.startswith(("Describe", "Get", "List"))]

    def clear(self) -> None:
        self.calls.clear()

    def wrap(self, build_client: Callable[..., Any]) -> Callable[..., Any]:
        """A replacement for Endpoint.client whose clients report to this recorder."""

        def recording_client(endpoint: Any, service: str) -> Any:
            client = build_client(endpoint, service)
            client.meta.events.register("before-call", self.record)
            return client

        return recording_client
