"""HealthGate: blocks the update until a color is fit for traffic, or fails it (P1, P2).

Fit means: the Auto Scaling Group has the expected number of InService, Healthy
instances, all running the release's AMI; each of them is `healthy` in every target
group of the color; EC2 system and instance status checks pass; and the optional
HTTP smoke checks answer as expected. Each poll costs one call per target group and
a fixed number of batched EC2/ASG calls, whatever the instance count.
"""

import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from components.aws import Endpoint
from components.progress import report
from components.props import changed_fields

STATUS_BATCH = 100  # describe_instance_status takes at most 100 explicit instance ids
VERIFIED_FIELDS = ("asg_name", "target_group_arns", "ami_id", "expected_count", "smoke_checks", "trigger")


class GateFailed(Exception):
    """The color did not become fit for traffic in time; the message holds a table of why."""


@dataclass(frozen=True)
class SmokeCheck:
    url: str
    expected_status: int = 200
    body_pattern: str = ""
    host: str = ""


@dataclass(frozen=True)
class GateInputs:
    endpoint: Endpoint
    asg_name: str
    target_group_arns: dict[str, str]
    ami_id: str
    expected_count: int
    timeout_seconds: float
    poll_seconds: float
    smoke_checks: tuple[SmokeCheck, ...]

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> "GateInputs":
        return cls(
            endpoint=Endpoint.from_props(props),
            asg_name=props["asg_name"],
            target_group_arns=dict(props["target_group_arns"]),
            ami_id=props["ami_id"],
            expected_count=int(props["expected_count"]),
            timeout_seconds=float(props["timeout_seconds"]),
            poll_seconds=float(props["poll_seconds"]),
            smoke_checks=tuple(
                SmokeCheck(
                    url=check["url"],
                    expected_status=int(check.get("expected_status") or 200),
                    body_pattern=check.get("body_pattern") or "",
                    host=check.get("host") or "",
                )
                for check in props.get("smoke_checks") or []
            ),
        )


@dataclass(frozen=True)
class TargetView:
    state: str
    reason: str = ""
    description: str = ""

    def __str__(self) -> str:
        detail = f" {self.reason}: {self.description}" if self.reason else ""
        return f"{self.state}{detail}"


@dataclass(frozen=True)
class InstanceView:
    instance_id: str
    lifecycle: str
    asg_health: str
    image_id: str
    targets: dict[str, TargetView]
    system_status: str
    instance_status: str

    @property
    def status_ok(self) -> bool:
        return self.system_status == "ok" and self.instance_status == "ok"


@dataclass(frozen=True)
class Verdict:
    fit: bool
    progress: str


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class GateClients:
    """Built once per gate run, not per poll."""

    autoscaling: Any
    ec2: Any
    elbv2: Any

    @classmethod
    def for_endpoint(cls, endpoint: Endpoint) -> "GateClients":
        return cls(endpoint.client("autoscaling"), endpoint.client("ec2"), endpoint.client("elbv2"))


def observe(inputs: GateInputs, clients: GateClients) -> list[InstanceView]:
    """One look at the color: ASG, images, status checks (batched) and one call per target group."""
    autoscaling, ec2, elbv2 = clients.autoscaling, clients.ec2, clients.elbv2
    groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[inputs.asg_name])["AutoScalingGroups"]
    members = groups[0]["Instances"] if groups else []
    ids = [member["InstanceId"] for member in members]
    if not ids:
        return []
    images: dict[str, str] = {}
    for page in ec2.get_paginator("describe_instances").paginate(InstanceIds=ids):
        for reservation in page["Reservations"]:
            images.update({instance["InstanceId"]: instance["ImageId"] for instance in reservation["Instances"]})
    statuses: dict[str, tuple[str, str]] = {}
    for batch in _batches(ids, STATUS_BATCH):
        for status in ec2.describe_instance_status(InstanceIds=batch, IncludeAllInstances=True)["InstanceStatuses"]:
            statuses[status["InstanceId"]] = (status["SystemStatus"]["Status"], status["InstanceStatus"]["Status"])
    health: dict[str, dict[str, TargetView]] = {}
    for route, arn in inputs.target_group_arns.items():
        for description in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]:
            target = description["TargetHealth"]
            health.setdefault(description["Target"]["Id"], {})[route] = TargetView(
                target["State"], target.get("Reason", ""), target.get("Description", "")
            )
    return [
        InstanceView(
            instance_id=member["InstanceId"],
            lifecycle=member["LifecycleState"],
            asg_health=member["HealthStatus"],
            image_id=images.get(member["InstanceId"], "?"),
            targets={
                route: health.get(member["InstanceId"], {}).get(route, TargetView("unregistered"))
                for route in inputs.target_group_arns
            },
            system_status=statuses.get(member["InstanceId"], ("unknown", "unknown"))[0],
            instance_status=statuses.get(member["InstanceId"], ("unknown", "unknown"))[1],
        )
        for member in members
    ]


def judge(instances: list[InstanceView], inputs: GateInputs) -> Verdict:
    """Whether the observed instances make the color fit, and a one-line account of where it stands."""
    expected = inputs.expected_count
    in_service = [i for i in instances if i.lifecycle == "InService" and i.asg_health == "Healthy"]
    on_image = [i for i in in_service if i.image_id == inputs.ami_id]
    parts = [
        f"{len(in_service)}/{expected} instances InService",
        f"{len(on_image)}/{expected} instances run {inputs.ami_id}",
    ]
    others = sorted({i.image_id for i in in_service if i.image_id != inputs.ami_id})
    if others:
        parts[-1] += f" (others run {', '.join(others)})"
    healthy_everywhere = True
    route_parts = []
    for route in inputs.target_group_arns:
        healthy = sum(1 for i in on_image if i.targets[route].state == "healthy")
        healthy_everywhere &= healthy == len(on_image)
        route_parts.append(f"{route}: {healthy}/{expected} healthy")
    checked = sum(1 for i in on_image if i.status_ok)
    progress = "; ".join([", ".join(parts), *route_parts, f"status checks {checked}/{expected} ok"])
    fit = len(on_image) >= expected and len(on_image) == len(in_service) and healthy_everywhere
    return Verdict(fit=fit and checked == len(on_image), progress=progress)


def run_smoke_check(check: SmokeCheck, timeout: float = 5.0) -> str | None:
    """None if the check passes, else what was wrong."""
    request = urllib.request.Request(check.url, headers={"Host": check.host} if check.host else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, body = response.status, response.read(65536).decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read(65536).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as error:
        return f"smoke check {check.url}: {error}"
    if status != check.expected_status:
        return f"smoke check {check.url}: status {status}, expected {check.expected_status}"
    if check.body_pattern and not re.search(check.body_pattern, body):
        return f"smoke check {check.url}: body does not match {check.body_pattern!r}"
    return None


def failure_table(instances: list[InstanceView], inputs: GateInputs) -> str:
    """One row per instance: lifecycle, image, state in each target group, status checks."""
    header = ["instance", "lifecycle", "image", *inputs.target_group_arns, "status checks"]
    rows = [
        [
            i.instance_id,
            f"{i.lifecycle}/{i.asg_health}",
            i.image_id + ("" if i.image_id == inputs.ami_id else " (not the release image)"),
            *(str(i.targets[route]) for route in inputs.target_group_arns),
            f"system {i.system_status}, instance {i.instance_status}",
        ]
        for i in instances
    ]
    if not rows:
        return f"(no instances in {inputs.asg_name})"
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    lines = ("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in [header, *rows])
    return "\n".join(line.rstrip() for line in lines)


def wait_until_fit(
    inputs: GateInputs,
    source: str,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[InstanceView]:
    """Polls until the color is fit; raises GateFailed with a table when the timeout passes."""
    deadline = clock() + inputs.timeout_seconds
    clients = GateClients.for_endpoint(inputs.endpoint)
    last_progress = ""
    while True:
        instances = observe(inputs, clients)
        verdict = judge(instances, inputs)
        problems = [] if not verdict.fit else [p for p in map(run_smoke_check, inputs.smoke_checks) if p]
        progress = "; ".join([verdict.progress, *problems])
        if progress != last_progress:
            report(source, progress)
            last_progress = progress
        if verdict.fit and not problems:
            return instances
        if clock() >= deadline:
            raise GateFailed(
                f"health gate for {inputs.asg_name} timed out after {inputs.timeout_seconds:g}s; "
                f"traffic was not moved. {progress}\n{failure_table(instances, inputs)}"
            )
        sleep(inputs.poll_seconds)


class HealthGateProvider(ResourceProvider):
    """create/update wait for the color; diff reads nothing; delete leaves AWS alone."""

    def _verify(self, props: dict[str, Any]) -> dict[str, Any]:
        inputs = GateInputs.from_props(props)
        instances = wait_until_fit(inputs, f"gate {inputs.asg_name}")
        return {
            **props,
            "passed_at": datetime.now(UTC).isoformat(),
            "instance_ids": sorted(i.instance_id for i in instances if i.lifecycle == "InService"),
        }

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"gate-{props['asg_name']}", outs=self._verify(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=bool(changed_fields(olds, news, VERIFIED_FIELDS)), replaces=[])

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._verify(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        # A gate records a verification that happened; refreshing it must not re-run or undo it.
        return ReadResult(id_=id_, outs=props)


@dataclass(frozen=True, kw_only=True)
class HealthGateArgs:
    region: str
    endpoint_url: str
    asg_name: pulumi.Input[str]
    target_group_arns: pulumi.Input[dict[str, str]]
    ami_id: pulumi.Input[str]
    expected_count: pulumi.Input[int]
    timeout_seconds: int
    poll_seconds: int
    smoke_checks: list[dict[str, Any]]
    trigger: pulumi.Input[dict[str, Any]]
    """Anything whose change must re-run the gate (version, template version, liveness, rules)."""


class HealthGate(Resource, module="bluegreen", name="HealthGate"):
    """Passes only when the color is fit for traffic; the traffic switch depends on it."""

    passed_at: pulumi.Output[str]
    instance_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: HealthGateArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(HealthGateProvider(), name, {**vars(args), "passed_at": None, "instance_ids": None}, opts)
