"""Live-color protection (P3), decided by what the production rules point at in AWS.

LiveColorGuard comes first in a color's stack: the image, launch template, target
groups and Auto Scaling Group all depend on it, so a refused change fails before any
of them is touched. It also decides the group's capacity: an idle color keeps full
capacity while the rules still point at it, and scales to `idle_capacity` only once
they moved away and the drain delay passed. DestroyGuard comes last (it depends on
the group), so on a destroy it is deleted first and refuses while the color serves.
Both only read AWS.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from components.aws import Endpoint
from components.config import COLORS, Capacity
from components.live_routes import read_rules, routes_served_by
from components.progress import report
from components.props import changed_fields, normalized

GUARD_INPUTS = (
    "app_name",
    "color",
    "active_color",
    "rule_arns",
    "release",
    "capacity",
    "idle_capacity",
    "drain_seconds",
)
DESTROY_GUARD_INPUTS = ("app_name", "color", "rule_arns", "asg_name", "target_group_arns")


class LiveColorChange(Exception):
    """A change that would touch the color serving production traffic; nothing was changed."""


@dataclass(frozen=True)
class Traffic:
    """What the rules point at now: the routes this color serves, and when the rules last moved."""

    serving: list[str]
    switched_at: datetime | None


def observe_traffic(endpoint: Endpoint, app_name: str, color: str, rule_arns: dict[str, str]) -> Traffic:
    elbv2 = endpoint.client("elbv2")
    rules = read_rules(elbv2, rule_arns)
    switches = [rule.switched_at for rule in rules.values() if rule.switched_at]
    return Traffic(serving=routes_served_by(elbv2, rules, app_name, color), switched_at=max(switches, default=None))


def _other(color: str) -> str:
    return next(other for other in COLORS if other != color)


def _joined(routes: list[str]) -> str:
    return routes[0] if len(routes) == 1 else f"{', '.join(routes[:-1])} and {routes[-1]}"


@dataclass(frozen=True)
class GuardInputs:
    endpoint: Endpoint
    app_name: str
    color: str
    active_color: str
    rule_arns: dict[str, str]
    release: dict[str, Any]
    capacity: Capacity
    idle_capacity: int | None
    drain_seconds: int

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> "GuardInputs":
        capacity = props["capacity"]
        idle = props.get("idle_capacity")
        return cls(
            endpoint=Endpoint.from_props(props),
            app_name=props["app_name"],
            color=props["color"],
            active_color=props["active_color"],
            rule_arns=dict(props["rule_arns"]),
            release=dict(props["release"]),
            capacity=Capacity(
                min_size=int(capacity["min_size"]), max_size=int(capacity["max_size"]), desired=int(capacity["desired"])
            ),
            idle_capacity=None if idle is None else int(idle),
            drain_seconds=int(props["drain_seconds"]),
        )


def plan_capacity(inputs: GuardInputs, traffic: Traffic, now: datetime) -> tuple[Capacity, str]:
    """The capacity the group should have now, and why."""
    if inputs.color == inputs.active_color:
        return inputs.capacity, f"{inputs.color} is the active color: full capacity"
    if inputs.idle_capacity is None:
        return inputs.capacity, f"{inputs.color} is idle and keeps full capacity (idle_capacity: full)"
    if traffic.serving:
        return inputs.capacity, (
            f"{inputs.color} is idle by config but still serves {_joined(traffic.serving)}: "
            "it keeps full capacity until the rules move away"
        )
    drained_at = traffic.switched_at + timedelta(seconds=inputs.drain_seconds) if traffic.switched_at else None
    if drained_at and now < drained_at:
        return inputs.capacity, (
            f"{inputs.color} is draining until {drained_at.isoformat(timespec='seconds')}: "
            f"it keeps full capacity; the next update scales it to {inputs.idle_capacity}"
        )
    idle = Capacity(min_size=inputs.idle_capacity, max_size=inputs.capacity.max_size, desired=inputs.idle_capacity)
    return idle, f"{inputs.color} is idle: scaled to {inputs.idle_capacity}"


def refusal(olds: dict[str, Any], inputs: GuardInputs, traffic: Traffic, planned: Capacity) -> str | None:
    """Why this change must not happen to a color that serves traffic, or None."""
    if not traffic.serving:
        return None
    serving = f"{inputs.color} still serves {_joined(traffic.serving)}"
    advice = f"deploy to {_other(inputs.color)} and promote it instead"
    if normalized(olds.get("release")) != normalized(inputs.release):
        return f"{serving}; {advice} (a new release of {inputs.color} would replace the instances taking traffic)"
    old_desired, old_min = int(olds.get("desired_capacity") or 0), int(olds.get("min_size") or 0)
    if planned.desired < old_desired or planned.min_size < old_min:
        return (
            f"{serving}; {advice} (lowering its capacity from {old_desired} to {planned.desired} "
            "while it takes traffic is refused)"
        )
    return None


class LiveColorGuardProvider(ResourceProvider):
    def _assess(self, olds: dict[str, Any] | None, news: dict[str, Any]) -> tuple[Capacity, dict[str, Any]]:
        inputs = GuardInputs.from_props(news)
        traffic = observe_traffic(inputs.endpoint, inputs.app_name, inputs.color, inputs.rule_arns)
        planned, note = plan_capacity(inputs, traffic, datetime.now(UTC))
        if olds is not None and (reason := refusal(olds, inputs, traffic, planned)):
            raise LiveColorChange(reason)
        if planned != inputs.capacity or traffic.serving:
            report(f"guard {inputs.color}", note)
        outs = {
            **news,
            "min_size": planned.min_size,
            "max_size": planned.max_size,
            "desired_capacity": planned.desired,
            "serving_routes": traffic.serving,
            "capacity_note": note,
        }
        return planned, outs

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"guard-{props['color']}", outs=self._assess(None, props)[1])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """Reads the rules (no writes), so that a refused change fails the preview already."""
        planned, _ = self._assess(olds, news)
        current = Capacity(
            min_size=int(olds["min_size"]), max_size=int(olds["max_size"]), desired=int(olds["desired_capacity"])
        )
        return DiffResult(changes=bool(changed_fields(olds, news, GUARD_INPUTS)) or planned != current, replaces=[])

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._assess(olds, news)[1])

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs=props)


class DestroyGuardProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"destroy-guard-{props['color']}", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=bool(changed_fields(olds, news, DESTROY_GUARD_INPUTS)), replaces=[])

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=news)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs=props)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        color = props["color"]
        traffic = observe_traffic(Endpoint.from_props(props), props["app_name"], color, dict(props["rule_arns"]))
        if traffic.serving:
            other = _other(color)
            raise LiveColorChange(
                f"{color} still serves {_joined(traffic.serving)}; refusing to destroy it. Promote {other} first "
                f"(active_color: {other}, then `pulumi up` the {other} stack), then destroy {color}"
            )


@dataclass(frozen=True, kw_only=True)
class LiveColorGuardArgs:
    region: str
    endpoint_url: str
    app_name: str
    color: str
    active_color: str
    rule_arns: dict[str, str]
    release: dict[str, Any]
    """Everything that, changed, replaces the color's instances: refused while the color serves."""
    capacity: dict[str, int]
    idle_capacity: int | None
    drain_seconds: int


class LiveColorGuard(Resource, module="bluegreen", name="LiveColorGuard"):
    """Refuses changes to the serving color and decides the capacity the color should have now."""

    min_size: pulumi.Output[int]
    max_size: pulumi.Output[int]
    desired_capacity: pulumi.Output[int]
    serving_routes: pulumi.Output[list[str]]
    capacity_note: pulumi.Output[str]

    def __init__(self, name: str, args: LiveColorGuardArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        outputs = dict.fromkeys(("min_size", "max_size", "desired_capacity", "serving_routes", "capacity_note"))
        super().__init__(LiveColorGuardProvider(), name, {**vars(args), **outputs}, opts)


@dataclass(frozen=True, kw_only=True)
class DestroyGuardArgs:
    region: str
    endpoint_url: str
    app_name: str
    color: str
    rule_arns: dict[str, str]
    asg_name: pulumi.Input[str]
    target_group_arns: pulumi.Input[dict[str, str]]


class DestroyGuard(Resource, module="bluegreen", name="DestroyGuard"):
    """Deleted before the color's group and target groups; refuses while the color serves traffic."""

    def __init__(self, name: str, args: DestroyGuardArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(DestroyGuardProvider(), name, dict(vars(args)), opts)
