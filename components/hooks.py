"""Traffic hooks: commands run with pulumi-command around the switch (CodeDeploy's BeforeAllowTraffic
and AfterAllowTraffic).

The command line is the user's; everything about the release reaches it in BLUEGREEN_* environment
variables, never spliced into it, so no config value becomes shell syntax. Hooks of one phase run
one after another, and a failing one stops the rest. Each re-runs when its trigger changes: a
before-hook when the gate takes a new verdict (a new release, or this update makes the color live),
an after-hook when the switch has moved traffic. pulumi-command runs nothing in a preview and
streams each command's output to the user.
"""

import json
from collections.abc import Mapping

import pulumi
from pulumi_command import local

from components.config import Settings

# A constant command line: the hook, its time limit and its failure message arrive as data in the environment.
RUNNER = (
    'timeout "$BLUEGREEN_HOOK_TIMEOUT" /bin/sh -c "$BLUEGREEN_HOOK" || { status=$?; '
    '[ "$status" = 124 ] && printf "timed out after %s s\\n" "$BLUEGREEN_HOOK_TIMEOUT" >&2; '
    'printf "%s\\n" "$BLUEGREEN_HOOK_FAILED" >&2; exit "$status"; }'
)


def release_environment(
    settings: Settings,
    ami_id: pulumi.Input[str],
    asg_name: pulumi.Input[str],
    target_group_arns: pulumi.Input[dict[str, str]],
    instance_ids: pulumi.Input[list[str]],
) -> dict[str, pulumi.Input[str]]:
    """What a hook gets to know about the release, as environment variables (lists and maps as JSON)."""
    return {
        "BLUEGREEN_COLOR": settings.color,
        "BLUEGREEN_VERSION": settings.version,
        "BLUEGREEN_AMI_ID": ami_id,
        "BLUEGREEN_ASG_NAME": asg_name,
        "BLUEGREEN_TARGET_GROUP_ARNS": pulumi.Output.json_dumps(target_group_arns),
        "BLUEGREEN_INSTANCE_IDS": pulumi.Output.from_input(instance_ids).apply(json.dumps),
        "BLUEGREEN_REGION": settings.region,
        "BLUEGREEN_ENDPOINT_URL": settings.endpoint_url,
        "BLUEGREEN_HOOK_TIMEOUT": str(settings.hook_timeout_seconds),
    }


def traffic_hooks(
    name: str,
    phase: str,
    commands: tuple[str, ...],
    environment: Mapping[str, pulumi.Input[str]],
    trigger: pulumi.Input[str],
    on_failure: str,
    opts: pulumi.ResourceOptions,
) -> list[local.Command]:
    """One Command per command line of `phase`, each after the one before; `on_failure` says where traffic is."""
    hooks: list[local.Command] = []
    for number, command in enumerate(commands, start=1):
        hooks.append(
            local.Command(
                f"{name}-{phase.replace('_', '-')}-{number}",
                create=RUNNER,
                environment={
                    **environment,
                    "BLUEGREEN_HOOK_PHASE": phase,
                    "BLUEGREEN_HOOK": command,
                    "BLUEGREEN_HOOK_FAILED": f"{phase} hook {number} failed: {on_failure}",
                },
                triggers=[trigger],
                # A hook's output may show what it used: kept secret in the state.
                opts=pulumi.ResourceOptions.merge(
                    opts, pulumi.ResourceOptions(depends_on=hooks[-1:], additional_secret_outputs=["stdout", "stderr"])
                ),
            )
        )
    return hooks
