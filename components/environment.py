"""BlueGreenEnvironment: one color's launch template, target groups and Auto Scaling Group."""

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.config import Route
from components.release_plan import CapacityPlan, TestRoute

# AWS's condition fields, and the pulumi-aws ListenerRule condition argument that carries each one.
CONDITION_ARGUMENTS = {
    "host-header": ("host_header", "HostHeaderConfig"),
    "path-pattern": ("path_pattern", "PathPatternConfig"),
    "http-request-method": ("http_request_method", "HttpRequestMethodConfig"),
    "source-ip": ("source_ip", "SourceIpConfig"),
}


def test_rule_conditions(conditions: list[dict[str, Any]], header: str, color: str) -> list[dict[str, Any]]:
    """The production rule's conditions as pulumi-aws takes them, plus the color header."""
    converted: list[dict[str, Any]] = []
    for condition in conditions:
        field = condition["Field"]
        if field in CONDITION_ARGUMENTS:
            argument, config = CONDITION_ARGUMENTS[field]
            converted.append({argument: {"values": condition.get(config, {}).get("Values") or condition["Values"]}})
        elif field == "http-header":
            config = condition["HttpHeaderConfig"]
            converted.append(
                {"http_header": {"http_header_name": config["HttpHeaderName"], "values": config["Values"]}}
            )
        elif field == "query-string":
            pairs = condition["QueryStringConfig"]["Values"]
            converted.append({"query_strings": [{"key": pair.get("Key"), "value": pair["Value"]} for pair in pairs]})
    return [*converted, {"http_header": {"http_header_name": header, "values": [color]}}]


@dataclass(frozen=True, kw_only=True)
class EnvironmentArgs:
    app_name: str
    color: str
    version: str
    image_id: pulumi.Input[str]
    image: pulumi.Resource | None
    """The BakedImage, if any: the group depends on it directly, so a replaced group is deleted before its image."""
    instance_type: str
    key_name: str | None
    security_group_ids: tuple[str, ...]
    instance_profile: str
    vpc_id: str
    subnet_ids: tuple[str, ...]
    routes: tuple[Route, ...]
    capacity: CapacityPlan
    health_check_grace_period: int
    release_tags: dict[str, str]
    """The release the group runs, recorded on it so the next program run can tell a new release."""
    test_routes: dict[str, TestRoute]
    test_header: str
    settled: tuple[str, ...]
    """Group properties to leave as they are (the template version, when the release is unchanged)."""


class BlueGreenEnvironment(pulumi.ComponentResource):
    """The instances of one color and the target groups that the production rules can point at.

    Pass the AWS provider in `providers` and `protect` while the color serves: the children inherit both.
    """

    target_group_arns: pulumi.Output[dict[str, str]]
    """Target group ARN of this color, by route name."""
    asg_name: pulumi.Output[str]
    """Name of the Auto Scaling Group; it changes whenever the group is replaced."""
    launch_template_id: pulumi.Output[str]
    """Id of the launch template."""

    def __init__(self, name: str, args: EnvironmentArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("bluegreen:index:Environment", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = {"app": args.app_name, "color": args.color, "version": args.version, "managed-by": "bluegreen"}

        template = aws.ec2.LaunchTemplate(
            f"{name}-template",
            name_prefix=f"{args.app_name}-{args.color}-",
            image_id=args.image_id,
            instance_type=args.instance_type,
            key_name=args.key_name,
            vpc_security_group_ids=list(args.security_group_ids),
            iam_instance_profile={"name": args.instance_profile},
            update_default_version=True,
            tag_specifications=[
                {"resource_type": "instance", "tags": tags},
                {"resource_type": "volume", "tags": tags},
            ],
            tags=tags,
            opts=child,
        )

        target_groups = {
            route.name: aws.lb.TargetGroup(
                f"{name}-{route.name}",
                port=route.port,
                protocol=route.protocol,
                vpc_id=args.vpc_id,
                target_type="instance",
                deregistration_delay=route.deregistration_delay,
                health_check={
                    "path": route.health_check_path,
                    "protocol": route.protocol,
                    "interval": route.health_check_interval,
                    "healthy_threshold": route.healthy_threshold,
                    "unhealthy_threshold": route.unhealthy_threshold,
                },
                tags={**tags, "route": route.name},
                opts=child,
            )
            for route in args.routes
        }

        for route, test in args.test_routes.items():
            aws.lb.ListenerRule(
                f"{name}-{route}-test",
                listener_arn=test.listener_arn,
                priority=test.priority,
                conditions=test_rule_conditions(test.conditions, args.test_header, args.color),
                actions=[{"type": "forward", "target_group_arn": target_groups[route].arn}],
                tags=test.tags,
                opts=child,
            )

        capacity = args.capacity
        group_tags = [{"key": key, "value": value, "propagate_at_launch": True} for key, value in tags.items()]
        group_tags += [
            {"key": key, "value": value, "propagate_at_launch": False} for key, value in args.release_tags.items()
        ]
        # The name carries the version and the template version is pinned, so a new version or
        # image replaces the whole group (create-before-delete) rather than leaving instances of
        # the old release in this color. Capacity AWS already has is left alone (`settled`), so
        # autoscaling keeps what it set and an unchanged config writes nothing.
        group = aws.autoscaling.Group(
            f"{name}-asg",
            name_prefix=f"{args.app_name}-{args.color}-{args.version}-",
            min_size=capacity.min_size,
            max_size=capacity.max_size,
            desired_capacity=capacity.desired,
            vpc_zone_identifiers=list(args.subnet_ids),
            target_group_arns=[target_groups[route.name].arn for route in args.routes],
            health_check_type="ELB",
            # The HealthGate judges the new group (with a table of why); the provider's own wait for
            # healthy capacity would fail first, and with less to say.
            wait_for_capacity_timeout="0",
            health_check_grace_period=args.health_check_grace_period,
            launch_template={"id": template.id, "version": template.latest_version.apply(str)},
            tags=group_tags,
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    replace_on_changes=["launchTemplate"],
                    ignore_changes=[*capacity.settled, *args.settled],
                    depends_on=[args.image] if args.image else [],
                ),
            ),
        )

        self.target_group_arns = pulumi.Output.all(
            **{route: target_group.arn for route, target_group in target_groups.items()}
        )
        self.asg_name = group.name
        self.launch_template_id = template.id
        self.register_outputs(
            {
                "target_group_arns": self.target_group_arns,
                "asg_name": self.asg_name,
                "launch_template_id": self.launch_template_id,
            }
        )
