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
from pulumi.dynamic import CheckFailure, CheckResult, DiffResult, ReadResult, Resource

from components.aws import AwsTarget
from components.config import Rollout
from components.dynamic import BluegreenProvider, changed_fields, is_known
from components.health_gate import FitnessCheck, wait_until_fit
from components.live_state import (
    COLOR_TAG,
    MOVING_TO_TAG,
    PREVIOUS_COLOR_TAG,
    PREVIOUS_VERSION_TAG,
    ROLLED_BACK_TAG,
    SWITCHED_AT_TAG,
    TAG_BATCH,
    VERSION_TAG,
    batches,
    read_groups,
    read_rules,
)
from components.progress import report
from components.rollout import (
    Interrupted,
    RolledBack,
    RuleSetter,
    SwitchFailed,
    Watch,
    rollout_from_props,
    rollout_props,
    shift,
)

INTENT_FIELDS = ("rule_arns", "target_group_arns", "color", "version")


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
    rollout: Rollout

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
            rollout=rollout_from_props(props["rollout"]),
        )

    def props(self) -> dict[str, Any]:
        fields = {name: getattr(self, name) for name in ("app_name", "color", "version", "rule_arns")}
        extra = {
            "target_group_arns": self.target_group_arns,
            "moves": self.moves,
            "drift": self.drift,
            "rollout": rollout_props(self.rollout),
        }
        return {**self.target.props(), **fields, **extra, "fitness": self.fitness.props()}


def _tag(elbv2: Any, arns: list[str], tags: dict[str, str]) -> None:
    for batch in batches(arns, TAG_BATCH):
        elbv2.add_tags(ResourceArns=batch, Tags=[{"Key": key, "Value": value} for key, value in tags.items()])


def _untag(elbv2: Any, arns: list[str], key: str) -> None:
    for batch in batches(arns, TAG_BATCH):
        elbv2.remove_tags(ResourceArns=batch, TagKeys=[key])


def _detach_leftovers(args: TrafficSwitchArgs, source: str) -> None:
    """Groups of this color other than the release's (a failed replacement, deleted at the end of an update)
    leave its target groups before the color takes traffic, so no request reaches an older release."""
    autoscaling = args.target.client("autoscaling")
    target_groups = list(args.target_group_arns.values())  # type: ignore[union-attr]
    for group in read_groups(args.target, args.app_name, args.color):
        if group.name != args.fitness.asg_name:
            autoscaling.detach_load_balancer_target_groups(
                AutoScalingGroupName=group.name, TargetGroupARNs=target_groups
            )
            report(source, f"detached {group.name}, an earlier group of {args.color}, from its target groups")


def switch(args: TrafficSwitchArgs, source: str) -> str:
    """Verifies the color, then moves every rule not yet on it in the rollout's steps; returns when traffic moved."""
    if args.drift:
        raise SwitchFailed(
            f"refusing to move traffic to {args.color}: {'; '.join(args.drift.values())}. This update did not make "
            f"{args.color} live, so the switch does not take that traffic back"
        )
    elbv2 = args.target.client("elbv2")
    rules = read_rules(args.target, args.app_name, args.rule_arns)
    ours: dict[str, str] = dict(args.target_group_arns)  # type: ignore[arg-type]
    moving = {route: rule for route, rule in rules.items() if rule.target_group_arns != (ours[route],)}
    for route, rule in moving.items():
        if not any(action["Type"] == "forward" for action in rule.actions):
            raise SwitchFailed(f"rule {rule.rule_arn} of route '{route}' has no forward action; nothing was moved")
    all_rules = list(args.rule_arns.values())
    if not moving:
        # Nothing moves: the rules keep the time traffic last moved, and say whose they are.
        last = max((rule.switched_at for rule in rules.values() if rule.switched_at), default=None)
        switched_at = last.isoformat() if last else datetime.now(UTC).isoformat()
        _tag(elbv2, all_rules, {COLOR_TAG: args.color, VERSION_TAG: args.version, SWITCHED_AT_TAG: switched_at})
        _untag(elbv2, all_rules, MOVING_TO_TAG)
        return switched_at
    report(source, f"verifying {args.color} right before moving {', '.join(sorted(moving))}")
    _detach_leftovers(args, source)
    verified = wait_until_fit(args.target, args.fitness, source, exclusive=True)
    if not verified:
        raise SwitchFailed(
            f"refusing to move traffic to {args.color}: it runs no instance to take it (0 verified); "
            f"check {args.color}'s capacity (min_size, desired_capacity)"
        )
    moving_arns = [args.rule_arns[route] for route in moving]
    # Written before any rule moves: a switch that dies part-way is then told from a hand-made change.
    _tag(elbv2, moving_arns, {MOVING_TO_TAG: args.color})
    watch = Watch(args.target, args.fitness, args.rollout.alarms, verified=frozenset(i.instance_id for i in verified))
    came_from = {
        COLOR_TAG: rules[next(iter(moving))].tags.get(COLOR_TAG, ""),
        VERSION_TAG: rules[next(iter(moving))].tags.get(VERSION_TAG, ""),
    }
    try:
        shift(RuleSetter(elbv2, args.rule_arns, args.color), moving, ours, args.rollout, watch, source)
    except RolledBack:
        # Traffic moved back now: the drain clock restarts, and this release is not promoted again unasked.
        now = datetime.now(UTC).isoformat()
        _tag(elbv2, moving_arns, {SWITCHED_AT_TAG: now, ROLLED_BACK_TAG: f"{args.color}@{args.version}@{now}"})
        for key in (MOVING_TO_TAG, PREVIOUS_COLOR_TAG, PREVIOUS_VERSION_TAG):  # a retry is no rollback
            _untag(elbv2, moving_arns, key)
        raise
    except Interrupted:
        raise
    except SwitchFailed:
        _untag(elbv2, moving_arns, MOVING_TO_TAG)
        raise
    switched_at = datetime.now(UTC).isoformat()
    tags = {COLOR_TAG: args.color, VERSION_TAG: args.version, SWITCHED_AT_TAG: switched_at}
    previous = {PREVIOUS_COLOR_TAG: came_from[COLOR_TAG], PREVIOUS_VERSION_TAG: came_from[VERSION_TAG]}
    _tag(elbv2, all_rules, {**tags, **previous})
    for key in (MOVING_TO_TAG, ROLLED_BACK_TAG):
        _untag(elbv2, all_rules, key)
    report(source, f"{', '.join(sorted(moving))}: all traffic on {args.color}")
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
