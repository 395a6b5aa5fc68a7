"""bluegreen: one color's stack of a blue/green release (see README.md).

1. Read and validate config; read what AWS says now (the rules, this color's groups).
2. Plan what this update does to the color; a change to the serving color fails here, before anything.
3. Build: image -> environment -> HealthGate -> before-traffic hooks -> TrafficSwitch -> after-traffic
   hooks (the switch and its hooks in the live color's stack only); DestroyGuard after the group.
4. Export what runs where.
"""

from datetime import UTC, datetime
from pathlib import Path

import pulumi

from components.aws_provider import aws_provider
from components.baked_image import IMAGE_DIR, release_image, template_hash
from components.config import load
from components.destroy_guard import DestroyGuard, DestroyGuardArgs
from components.environment import BlueGreenEnvironment, EnvironmentArgs
from components.health_gate import FitnessCheck, HealthGate, HealthGateArgs, SmokeCheck
from components.hooks import release_environment, traffic_hooks
from components.live_state import observe
from components.release_plan import other_color, plan_release
from components.traffic_switch import TrafficSwitch, TrafficSwitchArgs

PROJECT_DIR = Path(pulumi.get_root_directory())

settings = load(PROJECT_DIR)
image_hash = "" if settings.image_id else template_hash(PROJECT_DIR / IMAGE_DIR)
live = observe(settings)
plan = plan_release(settings, live, image_hash, datetime.now(UTC))
plan.announce()

name = f"{settings.app_name}-{settings.color}"
image_id, image = release_image(f"{name}-image", settings, image_hash, plan.deferred)
environment = BlueGreenEnvironment(
    name,
    EnvironmentArgs(
        app_name=settings.app_name,
        color=settings.color,
        version=settings.version,
        image_id=image_id,
        image=image,
        instance_type=settings.instance_type,
        key_name=settings.key_name,
        security_group_ids=settings.security_group_ids,
        instance_profile=settings.instance_profile,
        vpc_id=settings.vpc_id,
        subnet_ids=settings.subnet_ids,
        routes=settings.routes,
        capacity=plan.capacity,
        health_check_grace_period=settings.health_check_grace_period,
        release_tags=plan.release.tags(),
        test_routes=plan.test_routes,
        test_header=settings.test_header,
        settled=plan.settled_group,
    ),
    pulumi.ResourceOptions(providers=[aws_provider(f"{name}-aws", settings.target)], protect=plan.protect),
)
fitness = FitnessCheck(
    asg_name=environment.asg_name,
    target_group_arns=environment.target_group_arns,
    ami_id=image_id,
    expected_count=plan.capacity.verify_count,
    timeout_seconds=settings.gate_timeout_seconds,
    poll_seconds=settings.gate_poll_seconds,
    smoke_checks=tuple(
        SmokeCheck.from_config(check, settings.test_header, settings.color) for check in settings.smoke_checks
    ),
)
gate = HealthGate(
    f"{name}-gate",
    HealthGateArgs(target=settings.target, fitness=fitness, release=plan.release.tags(), moves=plan.moves),
)
hook_environment = release_environment(
    settings, image_id, environment.asg_name, environment.target_group_arns, gate.instance_ids
)
before_hooks = traffic_hooks(
    name,
    "before_allow_traffic",
    settings.hooks.before_allow_traffic,
    hook_environment,
    trigger=gate.passed_at,
    on_failure="traffic was not moved; fix the hook or the release, then `pulumi up` again",
    opts=pulumi.ResourceOptions(depends_on=[gate]),
)
DestroyGuard(
    f"{name}-destroy-guard",
    DestroyGuardArgs(
        target=settings.target, app_name=settings.app_name, color=settings.color, rule_arns=settings.rule_arns
    ),
    pulumi.ResourceOptions(depends_on=[environment]),
)
if plan.live:
    switch = TrafficSwitch(
        f"{name}-switch",
        TrafficSwitchArgs(
            target=settings.target,
            app_name=settings.app_name,
            color=settings.color,
            version=settings.version,
            rule_arns=settings.rule_arns,
            target_group_arns=environment.target_group_arns,
            fitness=fitness,
            moves=plan.moves,
            drift=plan.drift,
            rollout=plan.switch_rollout,
        ),
        pulumi.ResourceOptions(depends_on=[gate, *before_hooks]),
    )
    traffic_hooks(
        name,
        "after_allow_traffic",
        settings.hooks.after_allow_traffic,
        hook_environment,
        trigger=switch.switched_at,
        on_failure=(
            f"traffic is on {settings.color} now. To roll back, set active_color: {other_color(settings.color)} "
            f"in Pulumi.yaml and `pulumi up --stack {other_color(settings.color)}`"
        ),
        opts=pulumi.ResourceOptions(depends_on=[switch]),
    )

pulumi.export("summary", plan.summary())
pulumi.export("color", settings.color)
pulumi.export("version", settings.version)
pulumi.export("is_live", plan.live)
pulumi.export("capacity", {**vars(plan.capacity), "settled": list(plan.capacity.settled)})
pulumi.export("traffic", plan.traffic())
pulumi.export("serving_routes", plan.serving_after)
pulumi.export("drift", plan.drift)
pulumi.export("deferred", plan.deferred)
pulumi.export("ami_id", image_id)
pulumi.export("asg_name", environment.asg_name)
pulumi.export("target_group_arns", environment.target_group_arns)
pulumi.export("gate", {"passed_at": gate.passed_at, "verdict": gate.verdict})
pulumi.export("switched_at", switch.switched_at if plan.live else "")
pulumi.export("routes", environment.target_group_arns.apply(plan.routes_after))
