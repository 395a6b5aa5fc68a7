"""How the switch moves production rules: in weighted steps, watched, all rules together, or back.

Each step points every moving rule at a weighted forward (this color's target group and the one
the rule came from) and changes all of them or none. Between steps, and for the bake time after
the last, the rollback alarms and the color's fitness are watched; an alarm in ALARM or a color no
longer fit puts every rule back as it was before the update (100 % on the old color, which P3 kept
at capacity) and fails the update saying why and where traffic is. A rule carries the color it is
moving to while steps are under way, so an interrupted move can be told from a hand-made split.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from components.aws import AwsTarget
from components.config import Rollout
from components.health_gate import FitnessCheck, GateClients, observe, run_smoke_check, still_fit
from components.live_state import RuleView, forward_weights
from components.progress import report


class SwitchFailed(Exception):
    """The switch did not happen; the message says which rule failed and where traffic is now."""


class Interrupted(SwitchFailed):
    """Someone else moved the rules mid-way: nothing may be put back over their change."""


class RolledBack(SwitchFailed):
    """A watched step found a problem and every rule went back to the old color."""


def rollout_from_props(props: dict[str, Any]) -> Rollout:
    return Rollout(
        steps=tuple(int(step) for step in props["steps"]),
        step_wait_seconds=int(props["step_wait_seconds"]),
        bake_seconds=int(props["bake_seconds"]),
        alarms=tuple(props.get("alarms") or ()),
    )


def rollout_props(rollout: Rollout) -> dict[str, Any]:
    return {
        "steps": list(rollout.steps),
        "step_wait_seconds": rollout.step_wait_seconds,
        "bake_seconds": rollout.bake_seconds,
        "alarms": list(rollout.alarms),
    }


def forwarding(actions: list[dict[str, Any]], ours: str, old: str, percent: int) -> list[dict[str, Any]]:
    """The rule's actions with the forward action sending `percent` to `ours`, the rest to `old`
    (the forward's order and its stickiness kept: a canary usually needs sticky sessions)."""

    def forward(action: dict[str, Any]) -> dict[str, Any]:
        kept = {"Order": action["Order"]} if "Order" in action else {}
        if percent >= 100:
            return {"Type": "forward", "TargetGroupArn": ours, **kept}
        config = {
            "TargetGroups": [
                {"TargetGroupArn": ours, "Weight": percent},
                {"TargetGroupArn": old, "Weight": 100 - percent},
            ]
        }
        stickiness = action.get("ForwardConfig", {}).get("TargetGroupStickinessConfig")
        if stickiness:
            config["TargetGroupStickinessConfig"] = stickiness
        return {"Type": "forward", "ForwardConfig": config, **kept}

    return [forward(action) if action["Type"] == "forward" else action for action in actions]


def origin(rule: RuleView, ours: str) -> str:
    """The target group a moving rule comes from: the one, other than ours, that has the most of its traffic."""
    others = {arn: weight for arn, weight in forward_weights(rule.actions).items() if arn != ours}
    return max(others, key=lambda arn: others[arn]) if others else ours


@dataclass
class RuleSetter:
    """Sets many rules' actions, all or none, and says truthfully where each rule is when it cannot."""

    elbv2: Any
    rule_arns: dict[str, str]
    color: str

    def check_unchanged(self, current: dict[str, list[dict[str, Any]]]) -> None:
        """Compare-and-set: another update (the other stack's switch) may have moved these rules since."""
        described = self.elbv2.describe_rules(RuleArns=[self.rule_arns[route] for route in current])["Rules"]
        now = {rule["RuleArn"]: forward_weights(rule["Actions"]) for rule in described}
        changed = [
            route for route in sorted(current) if now.get(self.rule_arns[route]) != forward_weights(current[route])
        ]
        if changed:
            raise Interrupted(
                f"{', '.join(changed)} changed while this update was moving traffic to {self.color} (another update, "
                "or a person): this update stops and leaves every rule as it is now"
            )

    def set(self, wanted: dict[str, list[dict[str, Any]]], current: dict[str, list[dict[str, Any]]]) -> None:
        self.check_unchanged(current)
        done: list[str] = []
        for route in sorted(wanted):
            try:
                self.elbv2.modify_rule(RuleArn=self.rule_arns[route], Actions=wanted[route])
            except (BotoCoreError, ClientError) as error:
                unrestored = self._put_back(current, done)
                if unrestored:
                    where = (
                        f"RESTORE FAILED for {', '.join(unrestored)}: they still send traffic to {self.color}; "
                        "fix them by hand"
                    )
                elif done:
                    where = f"traffic restored: {', '.join(done)} back where they were; {route} never moved"
                else:
                    where = "no rule was moved"
                raise SwitchFailed(
                    f"switching route '{route}' (rule {self.rule_arns[route]}) to {self.color} failed: {error}; {where}"
                ) from error
            done.append(route)

    def _put_back(self, current: dict[str, list[dict[str, Any]]], routes: list[str]) -> list[str]:
        failed = []
        for route in routes:
            try:
                self.elbv2.modify_rule(RuleArn=self.rule_arns[route], Actions=current[route])
            except (BotoCoreError, ClientError):
                failed.append(route)
        return failed


@dataclass
class Watch:
    """What stops a promotion part-way: a rollback alarm in ALARM, or the color no longer fit."""

    target: AwsTarget
    fitness: FitnessCheck
    alarms: tuple[str, ...]
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    verified: frozenset[str] = frozenset()
    """The instances the switch's verdict found fit: they must stay so; new ones may still warm up."""

    def __post_init__(self) -> None:
        self.clients = GateClients.for_target(self.target)
        self.cloudwatch = self.target.client("cloudwatch") if self.alarms else None

    def problem(self) -> str | None:
        if self.cloudwatch is not None:
            described = self.cloudwatch.describe_alarms(AlarmNames=list(self.alarms))["MetricAlarms"]
            firing = [alarm for alarm in described if alarm["StateValue"] == "ALARM"]
            if firing:
                return "; ".join(f"alarm {a['AlarmName']} is in ALARM ({a.get('StateReason', '')})" for a in firing)
        if trouble := still_fit(observe(self.fitness, self.clients), self.fitness, self.verified):
            return f"the color is no longer fit for traffic: {trouble}"
        failed = [problem for problem in map(run_smoke_check, self.fitness.smoke_checks) if problem]
        return "; ".join(failed) or None

    def during(self, seconds: float, label: str, source: str) -> str | None:
        """Watches for `seconds` (one look when 0); returns the first problem seen, or None."""
        deadline = self.clock() + seconds
        while True:
            if problem := self.problem():
                return problem
            left = deadline - self.clock()
            alarms = "alarms OK" if self.alarms else "no rollback alarms"
            report(source, f"{label}, {alarms}, {max(0, math.ceil(left))} s left")
            if left <= 0:
                return None
            self.sleep(min(self.fitness.poll_seconds, left))


def shift(
    setter: RuleSetter,
    before: dict[str, RuleView],
    ours: dict[str, str],
    rollout: Rollout,
    watch: Watch,
    source: str,
) -> None:
    """Moves the rules of `before` to `ours` in the rollout's steps; on a problem every rule goes back to
    100 % on the target group it comes from (a resumed move included)."""
    origins = {route: origin(rule, ours[route]) for route, rule in before.items()}
    already = min(rule.shares.get(setter.color, 0) for rule in before.values())
    steps = [step for step in rollout.steps if step > already] or [100]
    original = {route: rule.actions for route, rule in before.items()}
    back = {route: forwarding(original[route], origins[route], ours[route], 100) for route in before}
    current = dict(original)
    for number, percent in enumerate(steps, start=1):
        wanted = {route: forwarding(original[route], ours[route], origins[route], percent) for route in before}
        try:
            setter.set(wanted, current)
        except Interrupted:
            raise
        except SwitchFailed as failed:
            raise SwitchFailed(f"{failed}{_roll_back(setter, back, current)}") from failed
        current = wanted
        label = f"step {number}/{len(steps)}: {percent} % to {setter.color}"
        report(source, label)
        last = number == len(steps)
        problem = watch.during(rollout.bake_seconds if last else rollout.step_wait_seconds, label, source)
        if problem:
            raise RolledBack(
                f"promotion of {setter.color} rolled back at {label}: {problem}{_roll_back(setter, back, current)}"
            )


def _roll_back(
    setter: RuleSetter, back: dict[str, list[dict[str, Any]]], current: dict[str, list[dict[str, Any]]]
) -> str:
    """Puts every rule back on the target group it came from, all of its traffic; says where traffic is."""
    if all(forward_weights(current[route]) == forward_weights(back[route]) for route in back):
        return ""
    try:
        setter.set(back, current)
    except SwitchFailed as failed:
        return f"; rolling back failed too: {failed}"
    return f"; every rule is back on the target group it came from, all of its traffic ({', '.join(sorted(back))})"
