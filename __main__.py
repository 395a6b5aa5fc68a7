"""bluegreen: one color's stack of a blue/green release (see README.md)."""

import pulumi

from components.config import load
from components.environment import BlueGreenEnvironment, EnvironmentArgs

settings = load()
capacity = settings.planned_capacity

environment = BlueGreenEnvironment(
    f"{settings.app_name}-{settings.color}",
    EnvironmentArgs(
        app_name=settings.app_name,
        color=settings.color,
        version=settings.version,
        image_id=settings.image_id,
        instance_type=settings.instance_type,
        key_name=settings.key_name,
        security_group_ids=settings.security_group_ids,
        instance_profile=settings.instance_profile,
        vpc_id=settings.vpc_id,
        subnet_ids=settings.subnet_ids,
        routes=settings.routes,
        min_size=capacity.min_size,
        max_size=capacity.max_size,
        desired_capacity=capacity.desired,
        health_check_grace_period=settings.health_check_grace_period,
    ),
)

pulumi.export("color", settings.color)
pulumi.export("version", settings.version)
pulumi.export("is_live", settings.is_live)
pulumi.export("asg_name", environment.asg_name)
pulumi.export("target_group_arns", environment.target_group_arns)
