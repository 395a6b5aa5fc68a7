"""What AWS says now: where each production rule forwards, and this color's Auto Scaling Groups.

The truth about which color is live is what the rules point at, read from AWS, never config.
The program reads it at startup, in previews too (a dynamic provider's outputs are unknown in a
preview), and the providers read the same things when they act. A few calls for all routes:
describe_rules, describe_tags per 20 rules and per 20 target groups, describe_auto_scaling_groups.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pulumi
from botocore.exceptions import ClientError

from components.aws import AwsTarget
from components.config import Settings

COLOR_TAG = "bluegreen:color"
VERSION_TAG = "bluegreen:version"
SWITCHED_AT_TAG = "bluegreen:switched-at"
PREVIOUS_COLOR_TAG = "bluegreen:previous-color"
PREVIOUS_VERSION_TAG = "bluegreen:previous-version"
"""Where the last completed switch took traffic from: moving back there is a rollback, done at once."""
ROLLED_BACK_TAG = "bluegreen:rolled-back"
"""color@version@time of a promotion the watch rolled back: not promoted again by an unchanged update."""
MOVING_TO_TAG = "bluegreen:moving-to"
"""Set while the switch shifts traffic in weighted steps: an interrupted move can be told from a hand-made split."""
TAG_BATCH = 20  # describe_tags takes at most 20 ARNs


class RuleMissing(pulumi.RunError):
    """A configured rule ARN names no listener rule: bad config (P8), reported as one line."""

    def __init__(self, route: str, rule_arn: str) -> None:
        super().__init__(f"bluegreen:routes.{route}.rule_arn names no existing listener rule: {rule_arn}")
        self.route = route


@dataclass(frozen=True)
class RuleView:
    """One production rule: where it forwards and what bluegreen's switch last wrote on it."""

    route: str
    rule_arn: str
    actions: list[dict[str, Any]]
    target_group_arns: tuple[str, ...]
    """Target groups that receive traffic (a weight of 0 receives none)."""
    colors: tuple[str, ...]
    """Colors of this app whose target groups receive some of its traffic, sorted."""
    foreign: bool
    """Whether a target group outside this app receives some of its traffic."""
    tags: dict[str, str]
    shares: dict[str, int]
    """Percent of the rule's traffic each color receives (weighted forwards split it)."""
    conditions: list[dict[str, Any]]
    priority: int

    @property
    def listener_arn(self) -> str:
        """A rule's ARN is its listener's with one more path segment."""
        head, _, _ = self.rule_arn.rpartition("/")
        return head.replace(":listener-rule/", ":listener/", 1)

    @property
    def moving_to(self) -> str | None:
        """The color an interrupted weighted move was shifting this rule to."""
        return self.tags.get(MOVING_TO_TAG)

    @property
    def color(self) -> str | None:
        """The one color that receives all of the rule's traffic, if there is one."""
        return self.colors[0] if len(self.colors) == 1 and not self.foreign else None

    @property
    def switched_color(self) -> str | None:
        """The color bluegreen's switch last pointed this rule at."""
        return self.tags.get(COLOR_TAG)

    @property
    def switched_at(self) -> datetime | None:
        stamp = self.tags.get(SWITCHED_AT_TAG)
        return datetime.fromisoformat(stamp) if stamp else None


@dataclass(frozen=True)
class GroupView:
    """One Auto Scaling Group of a color, as AWS reports it."""

    name: str
    created: datetime
    min_size: int
    max_size: int
    desired: int
    tags: dict[str, str]


def forward_targets(actions: list[dict[str, Any]]) -> tuple[str, ...]:
    """Target groups that receive some of the traffic (a weight of 0 receives none)."""
    return tuple(arn for arn, weight in forward_weights(actions).items() if weight > 0)


def forward_weights(actions: list[dict[str, Any]]) -> dict[str, int]:
    """Target group -> weight of the rule's forward action (a plain forward is one group at weight 1)."""
    weights: dict[str, int] = {}
    for action in actions:
        if action["Type"] != "forward":
            continue
        weighted = action.get("ForwardConfig", {}).get("TargetGroups")
        if weighted:
            weights.update({group["TargetGroupArn"]: int(group.get("Weight", 1)) for group in weighted})
        elif action.get("TargetGroupArn"):
            weights[action["TargetGroupArn"]] = 1
    return weights


def batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def resource_tags(elbv2: Any, arns: list[str]) -> dict[str, dict[str, str]]:
    tags: dict[str, dict[str, str]] = {}
    for batch in batches(sorted(set(arns)), TAG_BATCH):
        for description in elbv2.describe_tags(ResourceArns=batch)["TagDescriptions"]:
            tags[description["ResourceArn"]] = {tag["Key"]: tag["Value"] for tag in description["Tags"]}
    return tags


def _describe_rules(elbv2: Any, rule_arns: dict[str, str]) -> dict[str, dict[str, Any]]:
    try:
        rules = elbv2.describe_rules(RuleArns=list(rule_arns.values()))["Rules"]
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("RuleNotFound", "ValidationError"):
            raise
        # One call for all rules fails as a whole: find the rule at fault to name its route.
        for route, arn in rule_arns.items():
            try:
                elbv2.describe_rules(RuleArns=[arn])
            except ClientError:
                raise RuleMissing(route, arn) from error
        raise
    return {rule["RuleArn"]: rule for rule in rules}


def read_rules(target: AwsTarget, app_name: str, rule_arns: dict[str, str]) -> dict[str, RuleView]:
    """Every route's rule, with the color of the target group it forwards to (by the group's own tags)."""
    elbv2 = target.client("elbv2")
    rules = _describe_rules(elbv2, rule_arns)
    forwards = {arn: forward_targets(rule["Actions"]) for arn, rule in rules.items()}
    tags = resource_tags(elbv2, [*rule_arns.values(), *(tg for targets in forwards.values() for tg in targets)])

    def color_of(target_group_arn: str) -> str | None:
        group_tags = tags.get(target_group_arn, {})
        return group_tags.get("color") if group_tags.get("app") == app_name else None

    def shares(actions: list[dict[str, Any]]) -> dict[str, int]:
        weights = forward_weights(actions)
        total = sum(weights.values()) or 1
        by_color: dict[str, int] = {}
        for arn, weight in weights.items():
            if weight and (color := color_of(arn)):
                by_color[color] = by_color.get(color, 0) + round(100 * weight / total)
        return by_color

    return {
        route: RuleView(
            route=route,
            rule_arn=arn,
            actions=rules[arn]["Actions"],
            target_group_arns=forwards[arn],
            colors=tuple(sorted({color for tg in forwards[arn] if (color := color_of(tg))})),
            foreign=any(color_of(tg) is None for tg in forwards[arn]),
            tags=tags.get(arn, {}),
            shares=shares(rules[arn]["Actions"]),
            conditions=rules[arn].get("Conditions", []),
            priority=int(rules[arn]["Priority"]) if str(rules[arn].get("Priority", "")).isdigit() else 0,
        )
        for route, arn in rule_arns.items()
    }


def read_groups(target: AwsTarget, app_name: str, color: str) -> list[GroupView]:
    """This app's Auto Scaling Groups of one color, newest first (two exist while one replaces the other)."""
    filters = [{"Name": "tag:app", "Values": [app_name]}, {"Name": "tag:color", "Values": [color]}]
    pages = target.client("autoscaling").get_paginator("describe_auto_scaling_groups").paginate(Filters=filters)
    groups = [
        GroupView(
            name=group["AutoScalingGroupName"],
            created=group["CreatedTime"],
            min_size=group["MinSize"],
            max_size=group["MaxSize"],
            desired=group["DesiredCapacity"],
            tags={tag["Key"]: tag["Value"] for tag in group.get("Tags", [])},
        )
        for page in pages
        for group in page["AutoScalingGroups"]
    ]
    return sorted(groups, key=lambda group: group.created, reverse=True)


@dataclass(frozen=True)
class LiveState:
    """What a stack's program sees of AWS at startup."""

    rules: dict[str, RuleView]
    groups: list[GroupView]
    """This color's groups, newest first."""
    alarms: dict[str, str] = field(default_factory=dict)
    """State of each configured rollback alarm that exists, by name."""
    priorities: dict[str, dict[int, dict[str, str]]] = field(default_factory=dict)
    """Per listener, the tags of the rule at each priority a test route wants (absent: the priority is free)."""

    def serving(self, color: str) -> list[str]:
        """Routes, sorted, whose rule sends any of its traffic to this color."""
        return sorted(route for route, rule in self.rules.items() if color in rule.colors)

    @property
    def last_switch(self) -> datetime | None:
        return max((rule.switched_at for rule in self.rules.values() if rule.switched_at), default=None)


def read_alarms(target: AwsTarget, names: list[str]) -> dict[str, str]:
    """State (OK, ALARM, INSUFFICIENT_DATA) of each alarm that exists, by name; one call per 100 names."""
    cloudwatch, states = target.client("cloudwatch"), {}
    for batch in batches(names, 100):
        for alarm in cloudwatch.describe_alarms(AlarmNames=batch)["MetricAlarms"]:
            states[alarm["AlarmName"]] = alarm["StateValue"]
    return states


def read_priorities(target: AwsTarget, wanted: dict[str, set[int]]) -> dict[str, dict[int, dict[str, str]]]:
    """Per listener, the tags of the rules that hold the wanted priorities."""
    elbv2, found = target.client("elbv2"), {}
    for listener, priorities in wanted.items():
        pages = elbv2.get_paginator("describe_rules").paginate(ListenerArn=listener)
        holders = {
            int(rule["Priority"]): rule["RuleArn"]
            for page in pages
            for rule in page["Rules"]
            if rule["Priority"].isdigit()
        }
        taken = {priority: holders[priority] for priority in priorities if priority in holders}
        tags = resource_tags(elbv2, list(taken.values())) if taken else {}
        found[listener] = {priority: tags.get(arn, {}) for priority, arn in taken.items()}
    return found


def observe(settings: Settings) -> LiveState:
    """Everything the program reads at startup: rules, this color's groups, alarms, test rule priorities."""
    target = settings.target
    rules = read_rules(target, settings.app_name, settings.rule_arns)
    wanted: dict[str, set[int]] = {}
    for route in settings.routes:
        if route.test_priorities:
            wanted.setdefault(rules[route.name].listener_arn, set()).update(route.test_priorities.values())
    return LiveState(
        rules=rules,
        groups=read_groups(target, settings.app_name, settings.color),
        alarms=read_alarms(target, list(settings.rollout.alarms)) if settings.rollout.alarms else {},
        priorities=read_priorities(target, wanted),
    )
