"""What the production listener rules point at in AWS: the truth about which color is live."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

COLOR_TAG = "bluegreen:color"
VERSION_TAG = "bluegreen:version"
SWITCHED_AT_TAG = "bluegreen:switched-at"


@dataclass(frozen=True)
class RuleState:
    rule_arn: str
    actions: list[dict[str, Any]]
    target_group_arns: tuple[str, ...]
    tags: dict[str, str]

    @property
    def switched_at(self) -> datetime | None:
        stamp = self.tags.get(SWITCHED_AT_TAG)
        return datetime.fromisoformat(stamp) if stamp else None


def forward_targets(actions: list[dict[str, Any]]) -> tuple[str, ...]:
    """Target groups that receive traffic from these actions (weight 0 receives none)."""
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


def _tags(elbv2: Any, arns: list[str]) -> dict[str, dict[str, str]]:
    tags: dict[str, dict[str, str]] = {}
    for start in range(0, len(arns), 20):
        described = elbv2.describe_tags(ResourceArns=arns[start : start + 20])["TagDescriptions"]
        for description in described:
            tags[description["ResourceArn"]] = {tag["Key"]: tag["Value"] for tag in description["Tags"]}
    return tags


def read_rules(elbv2: Any, rule_arns: dict[str, str]) -> dict[str, RuleState]:
    """One describe_rules and one describe_tags call for all routes."""
    rules = {rule["RuleArn"]: rule for rule in elbv2.describe_rules(RuleArns=list(rule_arns.values()))["Rules"]}
    tags = _tags(elbv2, list(rule_arns.values()))
    return {
        route: RuleState(
            rule_arn=arn,
            actions=rules[arn]["Actions"],
            target_group_arns=forward_targets(rules[arn]["Actions"]),
            tags=tags.get(arn, {}),
        )
        for route, arn in rule_arns.items()
    }


def routes_served_by(elbv2: Any, rules: dict[str, RuleState], app_name: str, color: str) -> list[str]:
    """Routes, sorted, whose rule forwards to a target group of this app and color (by the groups' own tags)."""
    target_groups = sorted({arn for rule in rules.values() for arn in rule.target_group_arns})
    tags = _tags(elbv2, target_groups) if target_groups else {}

    def ours(arn: str) -> bool:
        return tags.get(arn, {}).get("app") == app_name and tags.get(arn, {}).get("color") == color

    return sorted(route for route, rule in rules.items() if any(ours(arn) for arn in rule.target_group_arns))
