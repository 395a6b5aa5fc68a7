"""Where the AWS API is, for every part of the program: one region and, for an emulator, one endpoint.

The program's reads, the dynamic providers and the pulumi-aws provider (components/aws_provider.py)
all take their region and endpoint from one AwsTarget, so the safety checks look at the same world
the resources change. Credentials come from the default chain for all of them.

Clients are built per use from explicit values: a dynamic provider's process does not see the
stack's config, and a client cannot be pickled with a provider. Throttling and transient errors are
retried by botocore's standard retry mode.
"""

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

RETRIES = Config(retries={"mode": "standard", "max_attempts": 8}, connect_timeout=10, read_timeout=30)


@dataclass(frozen=True, kw_only=True)
class AwsTarget:
    region: str
    endpoint_url: str = ""
    """Empty for real AWS."""

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> "AwsTarget":
        return cls(region=props["region"], endpoint_url=props.get("endpoint_url") or "")

    def props(self) -> dict[str, str]:
        return {"region": self.region, "endpoint_url": self.endpoint_url}

    def client(self, service: str) -> Any:
        return boto3.session.Session().client(
            service, region_name=self.region, endpoint_url=self.endpoint_url or None, config=RETRIES
        )
