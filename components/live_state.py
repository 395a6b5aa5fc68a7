"""What AWS says now: where each production rule forwards, and this color's Auto Scaling Groups.

The truth about which color is live is what the rules point at, read from AWS, never config.
The program reads it at startup, in previews too (a dynamic provider's outputs are unknown in a
preview), and the providers read the same things when they act. A few calls for all routes:
describe_rules, describe_tags per 20 rules and per 20 target groups, describe_auto_scaling_groups.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pulumi
from botocore.exceptions import ClientError

from components.aws import AwsTarget

COLOR_TAG = "bluegreen:color"
VERSION_TAG = "bluegreen:version"
SWITCHED_AT_TAG = "bluegreen:switched-at"
TAG_BATCH = 20  # describe_tags takes at most 20 ARNs


class RuleMissing(pulumi.RunError):
    """A configured rule ARN names no listener rule: bad config (P8), reported as one line."""

    def __init__(self, route: str, rule_arn: str) -> None:
        super().__init__(f"bluegreen:routes.{route}.rule_arn names no existing listener rule: {rule_arn}")


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
    arns: list[str] = []
    for action in actions:
        if action["Type"] != "forward":
            continue
        weighted = action.get("ForwardConfig", {}).get("TargetGroups")
        if weighted:
            arns += [group["TargetGroupArn"] for group in weighted if group.get("Weight", 1) > 0]
        elif action.get("TargetGroupArn"):
            arns.append(action["TargetGroupArn"])
    return tuple(dict.fromkeys(arns))


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def resource_tags(elbv2: Any, arns: list[str]) -> dict[str, dict[str, str]]:
    tags: dict[str, dict[str, str]] = {}
    for batch in _batches(sorted(set(arns)), TAG_BATCH):
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

    return {
        route: RuleView(
            route=route,
            rule_arn=arn,
            actions=rules[arn]["Actions"],
            target_group_arns=forwards[arn],
            colors=tuple(sorted({color for tg in forwards[arn] if (color := color_of(tg))})),
            foreign=any(color_of(tg) is None for tg in forwards[arn]),
            tags=tags.get(arn, {}),
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

    def serving(self, color: str) -> list[str]:
        """Routes, sorted, whose rule sends all its traffic to this color."""
        return sorted(route for route, rule in self.rules.items() if rule.color == color)

    @property
    def last_switch(self) -> datetime | None:
        return max((rule.switched_at for rule in self.rules.values() if rule.switched_at), default=None)


def observe(target: AwsTarget, app_name: str, color: str, rule_arns: dict[str, str]) -> LiveState:
    return LiveState(rules=read_rules(target, app_name, rule_arns), groups=read_groups(target, app_name, color))
