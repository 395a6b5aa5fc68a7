"""bluegreen: one color's stack of a blue/green release (see README.md).

Order: LiveColorGuard -> BakedImage -> environment (launch template, target groups, ASG) -> HealthGate
-> TrafficSwitch (only in the live color's stack); DestroyGuard sits after the ASG so a
destroy meets it first.
"""

from pathlib import Path

import pulumi

from components.baked_image import release_image, template_hash
from components.config import load
from components.environment import BlueGreenEnvironment, EnvironmentArgs
from components.health_gate import HealthGate, HealthGateArgs
from components.protection import DestroyGuard, DestroyGuardArgs, LiveColorGuard, LiveColorGuardArgs
from components.traffic_switch import TrafficSwitch, TrafficSwitchArgs

IMAGE_DIR = Path(__file__).resolve().parent / "image"

settings = load()
name = f"{settings.app_name}-{settings.color}"
aws_api = {"region": settings.region, "endpoint_url": settings.endpoint_url}
image_hash = "" if settings.image_id else template_hash(IMAGE_DIR)

guard = LiveColorGuard(
    f"{name}-guard",
    LiveColorGuardArgs(
        **aws_api,
        app_name=settings.app_name,
        color=settings.color,
        active_color=settings.active_color,
        rule_arns=settings.rule_arns,
        release={**settings.release, "template_hash": image_hash},
        capacity={
            "min_size": settings.capacity.min_size,
            "max_size": settings.capacity.max_size,
            "desired": settings.capacity.desired,
        },
        idle_capacity=settings.idle_capacity,
        drain_seconds=settings.drain_seconds,
    ),
)

image_id = release_image(f"{name}-image", settings, IMAGE_DIR, image_hash, pulumi.ResourceOptions(depends_on=[guard]))

environment = BlueGreenEnvironment(
    name,
    EnvironmentArgs(
        app_name=settings.app_name,
        color=settings.color,
        version=settings.version,
        image_id=image_id,
        instance_type=settings.instance_type,
        key_name=settings.key_name,
        security_group_ids=settings.security_group_ids,
        instance_profile=settings.instance_profile,
        vpc_id=settings.vpc_id,
        subnet_ids=settings.subnet_ids,
        routes=settings.routes,
        min_size=guard.min_size,
        max_size=guard.max_size,
        desired_capacity=guard.desired_capacity,
        health_check_grace_period=settings.health_check_grace_period,
    ),
    pulumi.ResourceOptions(depends_on=[guard]),
)

gate = HealthGate(
    f"{name}-gate",
    HealthGateArgs(
        **aws_api,
        asg_name=environment.asg_name,
        target_group_arns=environment.target_group_arns,
        ami_id=image_id,
        expected_count=guard.desired_capacity,
        timeout_seconds=settings.gate_timeout_seconds,
        poll_seconds=settings.gate_poll_seconds,
        smoke_checks=list(settings.smoke_checks),
        trigger={
            "version": settings.version,
            "launch_template_version": environment.launch_template_version,
            "live": settings.is_live,
            "rule_arns": settings.rule_arns,
        },
    ),
)

DestroyGuard(
    f"{name}-destroy-guard",
    DestroyGuardArgs(
        **aws_api,
        app_name=settings.app_name,
        color=settings.color,
        rule_arns=settings.rule_arns,
        asg_name=environment.asg_name,
        target_group_arns=environment.target_group_arns,
    ),
)

if settings.is_live:
    TrafficSwitch(
        f"{name}-switch",
        TrafficSwitchArgs(
            **aws_api,
            rule_arns=settings.rule_arns,
            target_group_arns=environment.target_group_arns,
            color=settings.color,
            version=settings.version,
            gate_passed_at=gate.passed_at,
        ),
        pulumi.ResourceOptions(depends_on=[gate]),
    )

pulumi.export("color", settings.color)
pulumi.export("version", settings.version)
pulumi.export("is_live", settings.is_live)
pulumi.export("serving_routes", guard.serving_routes)
pulumi.export("capacity_note", guard.capacity_note)
pulumi.export("asg_name", environment.asg_name)
pulumi.export("target_group_arns", environment.target_group_arns)
