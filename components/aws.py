"""AWS clients for the dynamic providers, built per call from explicit inputs.

The provider process does not see the stack's `aws:region`, and a client cannot be
pickled with the provider, so every method builds its clients from its own inputs.
Throttling and transient errors are retried by botocore's standard retry mode.
"""

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

RETRIES = Config(retries={"mode": "standard", "max_attempts": 8}, connect_timeout=10, read_timeout=30)


@dataclass(frozen=True)
class Endpoint:
    """Where the AWS API is: a region, and an endpoint URL only when talking to an emulator."""

    region: str
    url: str | None = None

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> "Endpoint":
        return cls(region=props["region"], url=props.get("endpoint_url") or None)

    def client(self, service: str) -> Any:
        return boto3.session.Session().client(service, region_name=self.region, endpoint_url=self.url, config=RETRIES)
