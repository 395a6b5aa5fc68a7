"""Drives the real dynamic-provider host (`python -m pulumi.dynamic`) over gRPC, as the engine does.

The host unpickles the provider from the `__provider` property, so running a method
through it proves the provider serializes and that its module imports from the project
root in a fresh process.
"""

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from pulumi.dynamic import ResourceProvider
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from tests.stack_config import PROJECT_DIR

PROVIDER_KEY = "__provider"


class ProviderHost:
    def __init__(self, stub: provider_pb2_grpc.ResourceProviderStub, process: subprocess.Popen[bytes]) -> None:
        self.stub, self.process = stub, process

    @staticmethod
    def _struct(props: dict[str, Any]) -> Any:
        return asyncio.run(rpc.serialize_properties(props, {}))

    @staticmethod
    def _props(struct: Any) -> dict[str, Any]:
        props = rpc.deserialize_properties(struct)
        props.pop(PROVIDER_KEY, None)
        return props

    def with_provider(self, provider: ResourceProvider, props: dict[str, Any]) -> dict[str, Any]:
        return {**props, PROVIDER_KEY: serialize_provider(provider)}

    def create(self, urn: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        response = self.stub.Create(provider_pb2.CreateRequest(urn=urn, properties=self._struct(props)))
        return response.id, self._props(response.properties)

    def diff(self, urn: str, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> Any:
        return self.stub.Diff(
            provider_pb2.DiffRequest(urn=urn, id=id_, olds=self._struct(olds), news=self._struct(news))
        )

    def read(self, urn: str, id_: str, props: dict[str, Any]) -> dict[str, Any]:
        response = self.stub.Read(provider_pb2.ReadRequest(urn=urn, id=id_, properties=self._struct(props)))
        return self._props(response.properties)

    def delete(self, urn: str, id_: str, props: dict[str, Any]) -> None:
        self.stub.Delete(provider_pb2.DeleteRequest(urn=urn, id=id_, properties=self._struct(props)))


@contextmanager
def provider_host(env: dict[str, str] | None = None) -> Iterator[ProviderHost]:
    """Starts the host from the project root, like the engine; yields a client; stops it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pulumi.dynamic"],
        cwd=PROJECT_DIR,
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
