"""Fitness for traffic, and the HealthGate that holds a release until its color is fit (P1, P2).

Fit means: the Auto Scaling Group has at least the expected count, and all of its desired count,
InService and Healthy, all running the release's AMI; each of them is `healthy` in every target
group of the color; EC2 system and instance status checks pass; and the optional HTTP smoke checks
answer as expected. FitnessCheck is the one definition: the HealthGate verifies a new release with
it, and the TrafficSwitch takes a fresh verdict with it right before it moves a rule.

Each poll costs one call per target group and a fixed number of batched EC2/ASG calls, whatever
the instance count.
"""

import base64
import http.client
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import pulumi
from pulumi.dynamic import DiffResult, Resource

from components.aws import AwsTarget
from components.dynamic import BluegreenProvider, changed_fields, is_known, normalized
from components.live_state import batches
from components.progress import masked, report

STATUS_BATCH = 100  # describe_instance_status takes at most 100 explicit instance ids
VERIFIED_FIELDS = ("asg_name", "target_group_arns", "ami_id", "expected_count", "smoke_checks")
"""A change of any of these, or of the release, makes an earlier verdict stale."""


class GateFailed(Exception):
    """The color did not become fit for traffic in time; the message holds a table of why."""


@dataclass(frozen=True, kw_only=True)
class SmokeCheck:
    url: str
    expected_status: int = 200
    body_pattern: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    """The Host header, and the color header when the check goes through the route's test rule."""

    @classmethod
    def from_config(cls, check: dict[str, Any], test_header: str, color: str) -> "SmokeCheck":
        headers = {"Host": check["host"]} if check["host"] else {}
        if check["via_test_route"]:
            headers[test_header] = color
        return cls(
            url=check["url"],
            expected_status=check["expected_status"],
            body_pattern=check["body_pattern"],
            headers=headers,
        )

    @property
    def shown(self) -> str:
        """The URL without credentials or query, which may carry tokens: what progress and errors name."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"

    def request(self) -> tuple[str, dict[str, str]]:
        """The URL to open and its headers: credentials in the URL become a Basic Authorization header."""
        parts = urlsplit(self.url)
        headers = dict(self.headers)
        if parts.username is None:
            return self.url, headers
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        netloc = parts.netloc.rpartition("@")[2]
        headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        return urlunsplit(parts._replace(netloc=netloc)), headers

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> "SmokeCheck":
        return cls(
            url=props["url"],
            expected_status=int(props.get("expected_status") or 200),
            body_pattern=props.get("body_pattern") or "",
            headers=dict(props.get("headers") or {}),
        )


@dataclass(frozen=True, kw_only=True)
class FitnessCheck:
    """What "fit for traffic" means for one color's group."""

    asg_name: pulumi.Input[str]
    target_group_arns: pulumi.Input[dict[str, str]]
    """By route."""
    ami_id: pulumi.Input[str]
    expected_count: int
    """At least this many instances; the group's desired count, when higher, is waited for too."""
    timeout_seconds: float
    poll_seconds: float
    smoke_checks: tuple[SmokeCheck, ...] = ()

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> "FitnessCheck":
        return cls(
            asg_name=props["asg_name"],
            target_group_arns=dict(props["target_group_arns"]),
            ami_id=props["ami_id"],
            expected_count=int(props["expected_count"]),
            timeout_seconds=float(props["timeout_seconds"]),
            poll_seconds=float(props["poll_seconds"]),
            smoke_checks=tuple(SmokeCheck.from_props(check) for check in props.get("smoke_checks") or []),
        )

    def props(self) -> dict[str, Any]:
        return {
            "asg_name": self.asg_name,
            "target_group_arns": self.target_group_arns,
            "ami_id": self.ami_id,
            "expected_count": self.expected_count,
            "timeout_seconds": self.timeout_seconds,
            "poll_seconds": self.poll_seconds,
            # The URLs may carry tokens: a secret in the engine's state and output.
            "smoke_checks": pulumi.Output.secret([vars(check) for check in self.smoke_checks]),
        }

    @property
    def routes(self) -> dict[str, str]:
        return self.target_group_arns  # type: ignore[return-value]  # concrete once parsed from props


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
class Observation:
    desired: int
    instances: list[InstanceView] = field(default_factory=list)
    strangers: dict[str, list[str]] = field(default_factory=dict)
    """Per route, targets registered in the color's target group that are not this group's instances."""


@dataclass(frozen=True)
class Verdict:
    fit: bool
    required: int
    progress: str


@dataclass(frozen=True)
class GateClients:
    """Built once per verification, not per poll."""

    autoscaling: Any
    ec2: Any
    elbv2: Any

    @classmethod
    def for_target(cls, target: AwsTarget) -> "GateClients":
        return cls(target.client("autoscaling"), target.client("ec2"), target.client("elbv2"))


def observe(check: FitnessCheck, clients: GateClients) -> Observation:
    """One look at the color: ASG, images, status checks (batched) and one call per target group."""
    autoscaling, ec2, elbv2 = clients.autoscaling, clients.ec2, clients.elbv2
    groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[check.asg_name])["AutoScalingGroups"]
    if not groups:
        return Observation(desired=0)
    members = groups[0]["Instances"]
    ids = [member["InstanceId"] for member in members]
    if not ids:
        return Observation(desired=groups[0]["DesiredCapacity"])
    images: dict[str, str] = {}
    for page in ec2.get_paginator("describe_instances").paginate(InstanceIds=ids):
        for reservation in page["Reservations"]:
            images.update({instance["InstanceId"]: instance["ImageId"] for instance in reservation["Instances"]})
    statuses: dict[str, tuple[str, str]] = {}
    for batch in batches(ids, STATUS_BATCH):
        for status in ec2.describe_instance_status(InstanceIds=batch, IncludeAllInstances=True)["InstanceStatuses"]:
            statuses[status["InstanceId"]] = (status["SystemStatus"]["Status"], status["InstanceStatus"]["Status"])
    health: dict[str, dict[str, TargetView]] = {}
    strangers: dict[str, list[str]] = {}
    for route, arn in check.routes.items():
        for description in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]:
            target, target_id = description["TargetHealth"], description["Target"]["Id"]
            health.setdefault(target_id, {})[route] = TargetView(
                target["State"], target.get("Reason", ""), target.get("Description", "")
            )
            if target_id not in ids and target["State"] not in ("draining", "unused"):
                strangers.setdefault(route, []).append(target_id)
    instances = [
        InstanceView(
            instance_id=member["InstanceId"],
            lifecycle=member["LifecycleState"],
            asg_health=member["HealthStatus"],
            image_id=images.get(member["InstanceId"], "?"),
            targets={
                route: health.get(member["InstanceId"], {}).get(route, TargetView("unregistered"))
                for route in check.routes
            },
            system_status=statuses.get(member["InstanceId"], ("unknown", "unknown"))[0],
            instance_status=statuses.get(member["InstanceId"], ("unknown", "unknown"))[1],
        )
        for member in members
    ]
    return Observation(desired=groups[0]["DesiredCapacity"], instances=instances, strangers=strangers)


def judge(observation: Observation, check: FitnessCheck, exclusive: bool = False) -> Verdict:
    """Whether the observed instances make the color fit, and a one-line account of where it stands.

    `exclusive`: right before traffic moves, no target outside the group may take requests in its target groups.
    """
    required = max(check.expected_count, observation.desired)
    instances = observation.instances
    in_service = [i for i in instances if i.lifecycle == "InService" and i.asg_health == "Healthy"]
    on_image = [i for i in in_service if i.image_id == check.ami_id]
    parts = [
        f"{len(in_service)}/{required} instances InService",
        f"{len(on_image)}/{required} instances run {check.ami_id}",
    ]
    others = sorted({i.image_id for i in in_service if i.image_id != check.ami_id})
    if others:
        parts[-1] += f" (others run {', '.join(others)})"
    unhealthy_in_group = [i.instance_id for i in instances if i.asg_health != "Healthy"]
    if unhealthy_in_group:
        parts.append(f"marked Unhealthy by the group: {', '.join(unhealthy_in_group)}")
    healthy_everywhere = True
    route_parts = []
    for route in check.routes:
        healthy = sum(1 for i in on_image if i.targets[route].state == "healthy")
        healthy_everywhere &= healthy == len(on_image)
        route_parts.append(f"{route}: {healthy}/{required} healthy")
    checked = sum(1 for i in on_image if i.status_ok)
    strangers = {route: ids for route, ids in observation.strangers.items() if exclusive and ids}
    route_parts += [
        f"{route} also sends requests to {', '.join(ids)}, outside the group" for route, ids in strangers.items()
    ]
    progress = "; ".join([", ".join(parts), *route_parts, f"status checks {checked}/{required} ok"])
    fit = (
        len(on_image) >= required
        and len(on_image) == len(in_service)
        and not unhealthy_in_group
        and healthy_everywhere
        and checked == len(on_image)
        and not strangers
    )
    return Verdict(fit=fit, required=required, progress=progress)


def still_fit(observation: Observation, check: FitnessCheck, verified: frozenset[str]) -> str | None:
    """Between weighted steps: what went wrong with the instances the verdict found fit, if anything.

    Instances autoscaling adds meanwhile may still be warming up; nothing outside the group may take
    requests in the color's target groups.
    """
    by_id = {instance.instance_id: instance for instance in observation.instances}
    problems = []
    for instance_id in sorted(verified):
        instance = by_id.get(instance_id)
        if instance is None or instance.lifecycle != "InService" or instance.asg_health != "Healthy":
            state = f"{instance.lifecycle}/{instance.asg_health}" if instance else "gone"
            problems.append(f"{instance_id} is {state}")
            continue
        problems += [
            f"{instance_id} is {target} in {route}"
            for route, target in instance.targets.items()
            if target.state != "healthy"
        ]
        if not instance.status_ok:
            problems.append(
                f"{instance_id} fails its status checks "
                f"(system {instance.system_status}, instance {instance.instance_status})"
            )
    problems += [
        f"{route} also sends requests to {', '.join(ids)}, outside the group"
        for route, ids in observation.strangers.items()
        if ids
    ]
    return "; ".join(problems) or None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is the check's answer: following it would send the Host header and credentials elsewhere."""

    def redirect_request(self, *_: Any, **__: Any) -> None:
        return None


NO_REDIRECTS = urllib.request.build_opener(_NoRedirect)


def run_smoke_check(check: SmokeCheck, timeout: float = 5.0) -> str | None:
    """None if the check passes, else what was wrong; any HTTP-level error is a failed check, never a crash."""
    try:
        url, headers = check.request()
        request = urllib.request.Request(url, headers=headers)
        with NO_REDIRECTS.open(request, timeout=timeout) as response:
            status, body = response.status, response.read(65536).decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read(65536).decode("utf-8", "replace")
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        return f"smoke check {check.shown}: {type(error).__name__}: {masked(str(error), [check.url])}"
    if status != check.expected_status:
        return f"smoke check {check.shown}: status {status}, expected {check.expected_status}"
    if check.body_pattern and not re.search(check.body_pattern, body):
        return f"smoke check {check.shown}: body does not match {check.body_pattern!r}"
    return None


def failure_table(observation: Observation, check: FitnessCheck) -> str:
    """One row per instance: lifecycle, image, state in each target group, status checks."""
    header = ["instance", "lifecycle", "image", *check.routes, "status checks"]
    rows = [
        [
            i.instance_id,
            f"{i.lifecycle}/{i.asg_health}",
            i.image_id + ("" if i.image_id == check.ami_id else " (not the release image)"),
            *(str(i.targets[route]) for route in check.routes),
            f"system {i.system_status}, instance {i.instance_status}",
        ]
        for i in observation.instances
    ]
    if not rows:
        return f"(no instances in {check.asg_name})"
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    lines = ("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in [header, *rows])
    return "\n".join(line.rstrip() for line in lines)


def wait_until_fit(
    target: AwsTarget,
    check: FitnessCheck,
    source: str,
    exclusive: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[InstanceView]:
    """Polls until the color is fit; returns the verified instances, none when 0 are required.

    Raises GateFailed with a table of every instance when the timeout passes.
    """
    deadline = clock() + check.timeout_seconds
    clients = GateClients.for_target(target)
    last_progress = ""
    while True:
        observation = observe(check, clients)
        verdict = judge(observation, check, exclusive)
        problems = [] if not verdict.fit else [p for p in map(run_smoke_check, check.smoke_checks) if p]
        progress = "; ".join([verdict.progress, *problems])
        if progress != last_progress:
            report(source, progress)
            last_progress = progress
        if verdict.fit and not problems:
            return [i for i in observation.instances if i.lifecycle == "InService"]
        if clock() >= deadline:
            raise GateFailed(
                f"{check.asg_name} is not fit for traffic after {check.timeout_seconds:g}s; traffic was not moved. "
                f"{progress}\n{failure_table(observation, check)}"
            )
        sleep(check.poll_seconds)


@dataclass(frozen=True, kw_only=True)
class HealthGateArgs:
    target: AwsTarget
    fitness: FitnessCheck
    release: dict[str, str]
    """The release the group runs (components/release_plan.py): a new one is verified again."""
    moves: dict[str, str]
    """Routes this update moves to the color: a promotion is verified again too (its hooks follow)."""

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> "HealthGateArgs":
        return cls(
            target=AwsTarget.from_props(props),
            fitness=FitnessCheck.from_props(props["fitness"]),
            release=dict(props["release"]),
            moves=dict(props.get("moves") or {}),
        )

    def props(self) -> dict[str, Any]:
        return {**self.target.props(), "fitness": self.fitness.props(), "release": self.release, "moves": self.moves}


def stale(olds: dict[str, Any], news: dict[str, Any]) -> bool:
    """Whether an earlier verdict no longer covers what the new inputs ask to verify."""
    if not is_known(news.get("fitness")) or not is_known(news.get("moves")) or news.get("moves"):
        return True
    if changed_fields(olds, news, ("release",)):
        return True
    old_check, new_check = olds.get("fitness") or {}, news["fitness"]
    if changed_fields(old_check, new_check, VERIFIED_FIELDS):
        return True
    return normalized(olds.get("verified_count") or 0) < normalized(new_check["expected_count"])


class HealthGateProvider(BluegreenProvider):
    """create and update wait for the color; diff reads nothing; delete leaves AWS alone."""

    def resource_id(self, props: dict[str, Any]) -> str:
        return f"gate-{props['fitness']['asg_name']}"

    def apply(self, props: dict[str, Any]) -> dict[str, Any]:
        args = HealthGateArgs.from_props(props)
        check = args.fitness
        if check.expected_count == 0:
            report(f"gate {check.asg_name}", "0 instances expected (idle capacity): nothing verified")
        instances = wait_until_fit(args.target, check, f"gate {check.asg_name}")
        verified = sorted(i.instance_id for i in instances)
        return {
            "passed_at": datetime.now(UTC).isoformat() if verified else "",
            "verified_count": len(verified),
            "instance_ids": verified,
            "verdict": f"{len(verified)} instances fit for traffic" if verified else "nothing verified: 0 instances",
        }

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=stale(olds, news), replaces=[])


class HealthGate(Resource, module="bluegreen", name="HealthGate"):
    """Passes only when the color is fit for traffic; a verdict on 0 instances says so and is no pass."""

    passed_at: pulumi.Output[str]
    """When the verdict was taken; empty when there was nothing to verify."""
    verified_count: pulumi.Output[int]
    instance_ids: pulumi.Output[list[str]]
    verdict: pulumi.Output[str]

    def __init__(self, name: str, args: HealthGateArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        outputs = dict.fromkeys(("passed_at", "verified_count", "instance_ids", "verdict"))
        secret = pulumi.ResourceOptions(additional_secret_outputs=["fitness"])
        super().__init__(
            HealthGateProvider(), name, {**args.props(), **outputs}, pulumi.ResourceOptions.merge(opts, secret)
        )
