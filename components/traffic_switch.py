"""TrafficSwitch: points every production rule at this color, all rules or none.

It exists only in the live color's stack (active_color), after that color's HealthGate. It moves
traffic only on a fitness verdict it takes itself right before the move (P1), so a gate pass
recorded by an earlier update never lets traffic through: not on a retry after a failed switch, not
under `--target`. It runs when this update makes the color live (the program found rules that
bluegreen's switch had put on the other color, or never managed: `moves`) or when its intent changes;
never on drift that a refresh observed (P7). It refuses to run while a rule was moved by hand
(`drift`), since nobody asked it to take that traffic back. Deleting it leaves the rules alone.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pulumi
from botocore.exceptions import BotoCoreError, ClientError
from pulumi.dynamic import CheckFailure, CheckResult, DiffResult, ReadResult, Resource

from components.aws import AwsTarget
from components.dynamic import BluegreenProvider, changed_fields, is_known
from components.health_gate import FitnessCheck, wait_until_fit
from components.live_state import COLOR_TAG, SWITCHED_AT_TAG, VERSION_TAG, RuleView, read_rules
from components.progress import report

INTENT_FIELDS = ("rule_arns", "target_group_arns", "color", "version")


class SwitchFailed(Exception):
    """The switch did not happen; the message says which rule failed and where traffic is now."""


@dataclass(frozen=True, kw_only=True)
class TrafficSwitchArgs:
    target: AwsTarget
    app_name: str
    color: str
    version: str
    rule_arns: dict[str, str]
    target_group_arns: pulumi.Input[dict[str, str]]
    """This color's target group, by route."""
    fitness: FitnessCheck
    """Verified again right before any rule moves."""
    moves: dict[str, str]
    """Routes this update moves to this color, with where they are now (components/release_plan.py)."""
    drift: dict[str, str]
    """Routes moved by hand, described: the switch refuses to run while any."""

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> "TrafficSwitchArgs":
        return cls(
            target=AwsTarget.from_props(props),
            app_name=props["app_name"],
            color=props["color"],
            version=props["version"],
            rule_arns=dict(props["rule_arns"]),
            target_group_arns=dict(props["target_group_arns"]),
            fitness=FitnessCheck.from_props(props["fitness"]),
            moves=dict(props.get("moves") or {}),
            drift=dict(props.get("drift") or {}),
        )

    def props(self) -> dict[str, Any]:
        fields = {name: getattr(self, name) for name in ("app_name", "color", "version", "rule_arns")}
        extra = {"target_group_arns": self.target_group_arns, "moves": self.moves, "drift": self.drift}
        return {**self.target.props(), **fields, **extra, "fitness": self.fitness.props()}


def forwarding_to(actions: list[dict[str, Any]], target_group_arn: str) -> list[dict[str, Any]]:
    """The rule's actions with every forward action sent to one target group; other actions kept."""
    return [
        {"Type": "forward", "TargetGroupArn": target_group_arn, **({"Order": a["Order"]} if "Order" in a else {})}
        if a["Type"] == "forward"
        else a
        for a in actions
    ]


def _restore(elbv2: Any, before: dict[str, RuleView], moved: list[str]) -> list[str]:
    """Puts the moved routes' rules back as they were; returns those that could not be put back."""
    failed = []
    for route in moved:
        try:
            elbv2.modify_rule(RuleArn=before[route].rule_arn, Actions=before[route].actions)
        except (BotoCoreError, ClientError):
            failed.append(route)
    return failed


def _move_all_or_none(
    elbv2: Any, args: TrafficSwitchArgs, before: dict[str, RuleView], routes: list[str], source: str
) -> None:
    moved: list[str] = []
    for route in routes:
        target_group = args.target_group_arns[route]  # type: ignore[index]
        try:
            elbv2.modify_rule(RuleArn=args.rule_arns[route], Actions=forwarding_to(before[route].actions, target_group))
        except (BotoCoreError, ClientError) as error:
            unrestored = _restore(elbv2, before, moved)
            if unrestored:
                where = (
                    f"RESTORE FAILED for {', '.join(unrestored)}: these rules still forward to {args.color}; "
                    "fix them by hand"
                )
            elif moved:
                where = f"traffic restored: {', '.join(moved)} back where they were; {route} never moved"
            else:
                where = "no rule was moved"
            raise SwitchFailed(
                f"switching route '{route}' (rule {args.rule_arns[route]}) to {args.color} failed: {error}; {where}"
            ) from error
        moved.append(route)
        report(source, f"{route}: now forwarding to {args.color} ({target_group})")


def switch(args: TrafficSwitchArgs, source: str) -> str:
    """Verifies the color, then moves every rule not yet on it, all or none; returns the switch time."""
    if args.drift:
        raise SwitchFailed(
            f"refusing to move traffic to {args.color}: {'; '.join(args.drift.values())}. This update did not make "
            f"{args.color} live, so the switch does not take that traffic back"
        )
    elbv2 = args.target.client("elbv2")
    before = read_rules(args.target, args.app_name, args.rule_arns)
    to_move = sorted(
        route
        for route, rule in before.items()
        if rule.target_group_arns != (args.target_group_arns[route],)  # type: ignore[index]
    )
    for route in to_move:
        if not any(action["Type"] == "forward" for action in before[route].actions):
            raise SwitchFailed(
                f"rule {before[route].rule_arn} of route '{route}' has no forward action; nothing was moved"
            )
    if to_move:
        report(source, f"verifying {args.color} right before moving {', '.join(to_move)}")
        wait_until_fit(args.target, args.fitness, source)
        _move_all_or_none(elbv2, args, before, to_move, source)
    switched_at = datetime.now(UTC).isoformat()
    tags = {COLOR_TAG: args.color, VERSION_TAG: args.version, SWITCHED_AT_TAG: switched_at}
    elbv2.add_tags(ResourceArns=list(args.rule_arns.values()), Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return switched_at


class TrafficSwitchProvider(BluegreenProvider):
    intent = INTENT_FIELDS

    def resource_id(self, props: dict[str, Any]) -> str:
        return f"switch-{props['color']}"

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        rule_arns, target_groups = news.get("rule_arns"), news.get("target_group_arns")
        failures = []
        if is_known(rule_arns) and is_known(target_groups) and set(rule_arns or {}) != set(target_groups or {}):
            failures.append(CheckFailure("target_group_arns", "needs exactly one target group for every routed rule"))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        moves = news.get("moves")
        return DiffResult(changes=bool(changed_fields(olds, news, INTENT_FIELDS)) or not is_known(moves) or bool(moves))

    def apply(self, props: dict[str, Any]) -> dict[str, Any]:
        args = TrafficSwitchArgs.from_props(props)
        return {"switched_at": switch(args, f"switch {args.color}")}

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Reports where the rules point now, beside the intent, which it never rewrites."""
        args = TrafficSwitchArgs.from_props(props)
        rules = read_rules(args.target, args.app_name, args.rule_arns)
        observed = {route: list(rule.target_group_arns) for route, rule in rules.items()}
        return ReadResult(id_=id_, outs={**props, "observed_target_group_arns": observed})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        report(f"switch {props['color']}", "no longer managed here; the rules stay where they point")


class TrafficSwitch(Resource, module="bluegreen", name="TrafficSwitch"):
    """Production traffic for this color: present only in the live color's stack."""

    switched_at: pulumi.Output[str]

    def __init__(self, name: str, args: TrafficSwitchArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        secret = pulumi.ResourceOptions(additional_secret_outputs=["fitness"])  # smoke check URLs
        super().__init__(
            TrafficSwitchProvider(),
            name,
            {**args.props(), "switched_at": None},
            pulumi.ResourceOptions.merge(opts, secret),
        )
