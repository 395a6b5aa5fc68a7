"""TrafficSwitch: points every production rule at this color, all rules or none.

It exists only in the live color's stack and depends on that color's HealthGate, so
traffic moves only after the gate passed in the same update (P1). It acts on changes
of intent (its inputs), never on drift that a refresh observed (P7), and deleting it
leaves the rules where they are.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pulumi
from botocore.exceptions import BotoCoreError, ClientError
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

from components.aws import Endpoint
from components.live_routes import COLOR_TAG, SWITCHED_AT_TAG, VERSION_TAG, RuleState, forward_targets, read_rules
from components.progress import report
from components.props import changed_fields

INTENT_FIELDS = ("rule_arns", "target_group_arns", "color", "version")


class SwitchFailed(Exception):
    """The switch did not happen; the message says which rule failed and where traffic is now."""


@dataclass(frozen=True)
class SwitchInputs:
    endpoint: Endpoint
    rule_arns: dict[str, str]
    target_group_arns: dict[str, str]
    color: str
    version: str
    gate_passed_at: str

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> "SwitchInputs":
        return cls(
            endpoint=Endpoint.from_props(props),
            rule_arns=dict(props["rule_arns"]),
            target_group_arns=dict(props["target_group_arns"]),
            color=props["color"],
            version=props["version"],
            gate_passed_at=props.get("gate_passed_at") or "",
        )


def forwarding_to(actions: list[dict[str, Any]], target_group_arn: str) -> list[dict[str, Any]]:
    """The rule's actions with every forward action sent to one target group; other actions kept."""
    return [
        {"Type": "forward", "TargetGroupArn": target_group_arn, **({"Order": a["Order"]} if "Order" in a else {})}
        if a["Type"] == "forward"
        else a
        for a in actions
    ]


def _restore(elbv2: Any, before: dict[str, RuleState], routes: list[str]) -> list[str]:
    """Puts the given routes' rules back as they were; returns the routes that could not be restored."""
    failed = []
    for route in routes:
        try:
            elbv2.modify_rule(RuleArn=before[route].rule_arn, Actions=before[route].actions)
        except (BotoCoreError, ClientError):
            failed.append(route)
    return failed


def switch(inputs: SwitchInputs, source: str) -> str:
    """Moves every rule to this color's target groups or none of them; returns the switch time."""
    if not inputs.gate_passed_at:
        raise SwitchFailed(f"refusing to move traffic to {inputs.color}: its health gate has not passed")
    elbv2 = inputs.endpoint.client("elbv2")
    before = read_rules(elbv2, inputs.rule_arns)
    for route, state in before.items():
        if not forward_targets(state.actions):
            raise SwitchFailed(f"rule {state.rule_arn} of route '{route}' has no forward action; nothing was moved")
    attempted: list[str] = []
    for route, rule_arn in inputs.rule_arns.items():
        target = inputs.target_group_arns[route]
        if before[route].target_group_arns == (target,):
            continue
        attempted.append(route)
        try:
            elbv2.modify_rule(RuleArn=rule_arn, Actions=forwarding_to(before[route].actions, target))
        except (BotoCoreError, ClientError) as error:
            unrestored = _restore(elbv2, before, attempted)
            where = (
                f"traffic restored: {', '.join(attempted)} back on their previous target groups"
                if not unrestored
                else f"RESTORE FAILED for {', '.join(unrestored)}: check these rules by hand"
            )
            raise SwitchFailed(
                f"switching route '{route}' (rule {rule_arn}) to {inputs.color} failed: {error}; {where}"
            ) from error
        report(source, f"{route}: now forwarding to {inputs.color} ({target})")
    switched_at = datetime.now(UTC).isoformat(timespec="seconds")
    tags = {COLOR_TAG: inputs.color, VERSION_TAG: inputs.version, SWITCHED_AT_TAG: switched_at}
    elbv2.add_tags(
        ResourceArns=list(inputs.rule_arns.values()),
        Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
    )
    return switched_at


class TrafficSwitchProvider(ResourceProvider):
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        if set(news.get("rule_arns") or {}) != set(news.get("target_group_arns") or {}):
            failures.append(CheckFailure("target_group_arns", "needs exactly one target group for every routed rule"))
        return CheckResult(news, failures)

    def _apply(self, props: dict[str, Any]) -> dict[str, Any]:
        inputs = SwitchInputs.from_props(props)
        switched_at = switch(inputs, f"switch {inputs.color}")
        observed = {route: [arn] for route, arn in inputs.target_group_arns.items()}
        return {**props, "switched_at": switched_at, "observed_target_group_arns": observed}

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"switch-{props['color']}", outs=self._apply(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=bool(changed_fields(olds, news, INTENT_FIELDS)), replaces=[])

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._apply(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Reports where the rules point now, beside the intent, which it never rewrites."""
        inputs = SwitchInputs.from_props(props)
        rules = read_rules(inputs.endpoint.client("elbv2"), inputs.rule_arns)
        observed = {route: list(state.target_group_arns) for route, state in rules.items()}
        return ReadResult(id_=id_, outs={**props, "observed_target_group_arns": observed})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        report(f"switch {props['color']}", "no longer managed here; the rules stay where they point")


@dataclass(frozen=True, kw_only=True)
class TrafficSwitchArgs:
    region: str
    endpoint_url: str
    rule_arns: dict[str, str]
    target_group_arns: pulumi.Input[dict[str, str]]
    color: str
    version: str
    gate_passed_at: pulumi.Input[str]
    """The HealthGate's pass time: unknown until the gate ran, so the switch cannot run before it."""


class TrafficSwitch(Resource, module="bluegreen", name="TrafficSwitch"):
    """Production traffic for this color: present only in the live color's stack."""

    switched_at: pulumi.Output[str]
    observed_target_group_arns: pulumi.Output[dict[str, list[str]]]

    def __init__(self, name: str, args: TrafficSwitchArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {**vars(args), "switched_at": None, "observed_target_group_arns": None}
        super().__init__(TrafficSwitchProvider(), name, props, opts)
