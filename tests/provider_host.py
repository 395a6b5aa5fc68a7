"""Drives the real dynamic-provider host (`python -m pulumi.dynamic`) over gRPC, as the engine does.

The host unpickles the provider from the `__provider` property, so running a method through it
proves the provider serializes and that its module imports from the project root in a fresh
process. Property bags cross the wire as the engine sends them: numbers as floats, unknown values
(`pulumi.output.Unknown` on this side) as the host's unknown sentinel.
"""

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
from pulumi.dynamic import ResourceProvider
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from tests.stack_config import PROJECT_DIR

PROVIDER_KEY = "__provider"


def to_struct(props: dict[str, Any]) -> Any:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(rpc.serialize_properties(props, {}))
    finally:
        loop.close()


def from_struct(struct: Any, keep_unknowns: bool = False) -> dict[str, Any]:
    return rpc.deserialize_properties(struct, keep_unknowns)


class ProviderHost:
    def __init__(self, stub: provider_pb2_grpc.ResourceProviderStub, process: subprocess.Popen[bytes]) -> None:
        self.stub, self.process = stub, process
        self._stderr: list[str] = []
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._stderr.append(line.decode(errors="replace").rstrip("\n"))

    def stderr(self, since: int = 0) -> list[str]:
        """What the providers wrote to stderr (the engine shows each line to the user)."""
        return list(self._stderr[since:])

    def stderr_mark(self) -> int:
        return len(self._stderr)

    @staticmethod
    def with_provider(provider: ResourceProvider, props: dict[str, Any]) -> dict[str, Any]:
        return {**props, PROVIDER_KEY: serialize_provider(provider)}

    @staticmethod
    def _props(struct: Any) -> dict[str, Any]:
        props = from_struct(struct)
        props.pop(PROVIDER_KEY, None)
        return props

    def check(self, urn: str, olds: dict[str, Any], news: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The checked inputs (unknowns kept, provider reference kept) and the failures."""
        response = self.stub.Check(provider_pb2.CheckRequest(urn=urn, olds=to_struct(olds), news=to_struct(news)))
        failures = [f"{failure.property}: {failure.reason}" for failure in response.failures]
        return from_struct(response.inputs, keep_unknowns=True), failures

    def diff(self, urn: str, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> Any:
        return self.stub.Diff(provider_pb2.DiffRequest(urn=urn, id=id_, olds=to_struct(olds), news=to_struct(news)))

    def create(self, urn: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        response = self.stub.Create(provider_pb2.CreateRequest(urn=urn, properties=to_struct(props)))
        return response.id, from_struct(response.properties)

    def update(self, urn: str, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        request = provider_pb2.UpdateRequest(urn=urn, id=id_, olds=to_struct(olds), news=to_struct(news))
        return from_struct(self.stub.Update(request).properties)

    def read(self, urn: str, id_: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        response = self.stub.Read(provider_pb2.ReadRequest(urn=urn, id=id_, properties=to_struct(props)))
        return response.id, from_struct(response.properties)

    def delete(self, urn: str, id_: str, props: dict[str, Any]) -> None:
        self.stub.Delete(provider_pb2.DeleteRequest(urn=urn, id=id_, properties=to_struct(props)))


@contextmanager
def provider_host(cwd: Path = PROJECT_DIR, env: dict[str, str] | None = None) -> Iterator[ProviderHost]:
    """Starts the host in the project root, like the engine; yields a client; stops it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pulumi.dynamic"],
        cwd=cwd,
        env={**os.environ, "PULUMI_PROJECT": "bluegreen", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().decode().strip())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield ProviderHost(provider_pb2_grpc.ResourceProviderStub(channel), process)
    finally:
        process.terminate()
        process.wait(timeout=10)
