"""What runs where: both colors side by side, read from AWS alone (boto3; no Pulumi CLI, no stack state).

From the repository root:

    venv/bin/python -m scripts.status            # a table for people
    venv/bin/python -m scripts.status --json     # the same for machines

Per route: the color and target group its production rule forwards to. Per color: its Auto Scaling
Group's version, AMI, capacity (min/desired/max), instances InService and healthy in each route's
target group. The rules, app name, region and endpoint come from Pulumi.yaml, as the program reads
them; flags override them. Only Describe calls: any identity that may read the ALB, the groups and
EC2 can run it. The rules are read with components/live_state.py, the same reader the program uses,
so the status and a preview agree about which color is live.
"""

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import BotoCoreError, ClientError

from components.aws import AwsTarget
from components.live_state import GroupView, RuleMissing, RuleView, batches, read_groups, read_rules, resource_tags

COLORS = ("blue", "green")
PROJECT_DIR = Path(__file__).resolve().parent.parent
BATCH = 50  # describe_auto_scaling_groups takes at most 100 names, describe_instances ids in pages


@dataclass(frozen=True)
class Settings:
    """The shared settings the status needs, as Pulumi.yaml states them."""

    app_name: str
    region: str
    endpoint_url: str
    rule_arns: dict[str, str]


def _project_value(config: dict[str, Any], key: str, fallback: Any) -> Any:
    entry = config.get(key, fallback)
    if isinstance(entry, dict) and ("value" in entry or "default" in entry):
        return entry.get("value", entry.get("default"))
    return entry


def project_settings(project_dir: Path) -> Settings:
    """Pulumi.yaml's app name, region, endpoint and rules (each color's stack file sets none of them)."""
    config = (yaml.safe_load((project_dir / "Pulumi.yaml").read_text()) or {}).get("config") or {}
    routes = _project_value(config, "routes", {}) or {}
    return Settings(
        app_name=_project_value(config, "app_name", "app"),
        region=_project_value(config, "aws:region", ""),
        endpoint_url=_project_value(config, "endpoint_url", "") or "",
        rule_arns={route: fields["rule_arn"] for route, fields in routes.items()},
    )


@dataclass(frozen=True)
class RouteStatus:
    rule_arn: str
    forwards_to: str
    """The color that takes all of the rule's traffic, or each receiver joined by "+"."""
    target_groups: list[str]
    """Names of the target groups that receive its traffic."""


@dataclass(frozen=True)
class GroupStatus:
    name: str
    version: str
    amis: list[str]
    """What its instances run; with no instance, what its launch template would launch."""
    min_size: int
    desired: int
    max_size: int
    instances: int
    in_service: int
    healthy: dict[str, int]
    """Per route, how many of the group's instances are healthy in the route's target group."""


@dataclass(frozen=True)
class ColorStatus:
    serves: list[str]
    """Routes whose rule sends all of its traffic to this color."""
    groups: list[GroupStatus]
    """Newest first: two exist while a release replaces the group."""


def _name_of(target_group_arn: str) -> str:
    """`arn:...:targetgroup/NAME/ID` -> NAME."""
    return target_group_arn.split(":")[-1].split("/")[1]


def route_status(rule: RuleView) -> RouteStatus:
    """Where a rule forwards; a weighted rule shows each color's share, and a move under way says so."""
    shares = rule.shares if len(rule.shares) > 1 else {}
    receivers = [f"{color} {shares[color]} %" if shares else color for color in rule.colors]
    receivers += ["outside bluegreen"] if rule.foreign else []
    if rule.moving_to:
        receivers.append(f"(moving to {rule.moving_to})")
    return RouteStatus(
        rule_arn=rule.rule_arn,
        forwards_to=" + ".join(receivers) or "nothing",
        target_groups=[_name_of(arn) for arn in rule.target_group_arns],
    )


def _described_groups(autoscaling: Any, names: list[str]) -> dict[str, dict[str, Any]]:
    described = {}
    for batch in batches(names, BATCH):
        for group in autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=batch)["AutoScalingGroups"]:
            described[group["AutoScalingGroupName"]] = group
    return described


def _instance_images(ec2: Any, instance_ids: list[str]) -> dict[str, str]:
    images = {}
    for batch in batches(instance_ids, BATCH):
        for page in ec2.get_paginator("describe_instances").paginate(InstanceIds=batch):
            images.update({i["InstanceId"]: i["ImageId"] for r in page["Reservations"] for i in r["Instances"]})
    return images


def _template_image(ec2: Any, template: dict[str, Any]) -> list[str]:
    """The AMI of the launch template version a group launches (for a group with no instance)."""
    versions = ec2.describe_launch_template_versions(
        LaunchTemplateId=template["LaunchTemplateId"], Versions=[str(template.get("Version", "$Default"))]
    )["LaunchTemplateVersions"]
    return [versions[0]["LaunchTemplateData"]["ImageId"]] if versions else []


def _healthy_targets(elbv2: Any, target_group_arns: list[str]) -> dict[str, set[str]]:
    """Target group -> ids of its healthy targets: one call per target group, whatever the instance count."""
    return {
        arn: {
            description["Target"]["Id"]
            for description in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
            if description["TargetHealth"]["State"] == "healthy"
        }
        for arn in target_group_arns
    }


def color_groups(target: AwsTarget, views: dict[str, list[GroupView]]) -> dict[str, list[GroupStatus]]:
    """Each color's groups with instances, AMIs and target health: a few batched calls for all of them."""
    autoscaling, ec2, elbv2 = target.client("autoscaling"), target.client("ec2"), target.client("elbv2")
    described = _described_groups(autoscaling, [view.name for color in views.values() for view in color])
    members = {name: list(group["Instances"]) for name, group in described.items()}
    images = _instance_images(ec2, [i["InstanceId"] for group in members.values() for i in group])
    target_groups = sorted({arn for group in described.values() for arn in group.get("TargetGroupARNs", [])})
    routes = {arn: tags.get("route", _name_of(arn)) for arn, tags in resource_tags(elbv2, target_groups).items()}
    healthy = _healthy_targets(elbv2, target_groups)

    def status(view: GroupView) -> GroupStatus:
        group, ids = described.get(view.name, {}), [i["InstanceId"] for i in members.get(view.name, [])]
        amis = sorted({images[i] for i in ids if i in images})
        if not amis and group.get("LaunchTemplate"):
            amis = _template_image(ec2, group["LaunchTemplate"])
        return GroupStatus(
            name=view.name,
            version=view.tags.get("version", ""),
            amis=amis,
            min_size=view.min_size,
            desired=view.desired,
            max_size=view.max_size,
            instances=len(ids),
            in_service=sum(1 for i in members.get(view.name, []) if i["LifecycleState"] == "InService"),
            healthy={
                routes.get(arn, _name_of(arn)): len(healthy[arn] & set(ids)) for arn in group.get("TargetGroupARNs", [])
            },
        )

    return {color: [status(view) for view in color_views] for color, color_views in views.items()}


def read_status(settings: Settings) -> dict[str, Any]:
    target = AwsTarget(region=settings.region, endpoint_url=settings.endpoint_url)
    rules = read_rules(target, settings.app_name, settings.rule_arns)
    groups = color_groups(target, {color: read_groups(target, settings.app_name, color) for color in COLORS})
    colors = {
        color: ColorStatus(serves=sorted(r for r, rule in rules.items() if color in rule.colors), groups=groups[color])
        for color in COLORS
    }
    return {
        "app_name": settings.app_name,
        "region": settings.region,
        "routes": {route: asdict(route_status(rule)) for route, rule in rules.items()},
        "colors": {color: asdict(status) for color, status in colors.items()},
    }


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


def render(status: dict[str, Any]) -> str:
    """Routes, then the colors side by side: one column per color, its newest group."""
    routes = [["route", "forwards to", "target group", "rule"]]
    for route, found in status["routes"].items():
        routes.append([route, found["forwards_to"], ", ".join(found["target_groups"]) or "-", found["rule_arn"]])
    newest = {color: found["groups"][0] if found["groups"] else None for color, found in status["colors"].items()}

    def row(label: str, cell: Any) -> list[str]:
        return [label, *(cell(group) if group else "-" for group in newest.values())]

    route_names = sorted({route for group in newest.values() if group for route in group["healthy"]})
    colors = [
        ["", *newest],
        ["serves", *(", ".join(found["serves"]) or "-" for found in status["colors"].values())],
        row("group", lambda g: g["name"]),
        row("version", lambda g: g["version"] or "?"),
        row("AMI", lambda g: ", ".join(g["amis"]) or "?"),
        row("capacity", lambda g: f"{g['min_size']}/{g['desired']}/{g['max_size']} (min/desired/max)"),
        row("InService", lambda g: f"{g['in_service']}/{g['desired']}"),
        *(row(f"healthy in {r}", lambda g, r=r: f"{g['healthy'].get(r, 0)}/{g['instances']}") for r in route_names),
    ]
    older = {color: found["groups"][1:] for color, found in status["colors"].items()}
    if any(older.values()):
        colors.append(["older groups", *(", ".join(g["name"] for g in groups) or "-" for groups in older.values())])
    return "\n".join([f"{status['app_name']} in {status['region']}", "", *_table(routes), "", *_table(colors)])


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.status", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help="where Pulumi.yaml is")
    parser.add_argument("--region", help="AWS region (default: aws:region in Pulumi.yaml)")
    parser.add_argument("--endpoint-url", help="AWS API endpoint of an emulator (default: endpoint_url)")
    parser.add_argument("--app-name", help="the app_name tag of the groups (default: app_name)")
    parser.add_argument(
        "--rule",
        action="append",
        metavar="ROUTE=ARN",
        help="a production rule to read, instead of Pulumi.yaml's routes (repeat for each route)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    found = project_settings(args.project_dir)
    settings = Settings(
        app_name=args.app_name or found.app_name,
        region=args.region or found.region,
        endpoint_url=found.endpoint_url if args.endpoint_url is None else args.endpoint_url,
        rule_arns=dict(rule.split("=", 1) for rule in args.rule) if args.rule else found.rule_arns,
    )
    try:
        status = read_status(settings)
    except RuleMissing as error:
        print(f"status: {error}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as error:
        print(f"status: cannot read AWS in {settings.region}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(status, indent=2) if args.json else render(status))
    return 0


if __name__ == "__main__":
    sys.exit(main())
