"""The real __main__.py under Pulumi's mock engine: per stack and per active_color."""

import pytest

from components.baked_image import template_hash
from tests.program import BAKED_AMI, BAKED_IMAGE, DESTROY_GUARD, GATE, GUARD, SWITCH, ProgramRun, run_program
from tests.stack_config import PROJECT_DIR

AMI = "ami-0123456789abcdef0"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
ASG = "aws:autoscaling/group:Group"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
COMBINATIONS = [(stack, active) for stack in ("blue", "green") for active in ("blue", "green")]


def run(stack: str, active: str, **overrides: object) -> ProgramRun:
    return run_program(stack, active_color=active, image_id=AMI, **overrides)


@pytest.mark.parametrize(("stack", "active"), COMBINATIONS)
def test_one_environment_of_the_stack_color(stack: str, active: str) -> None:
    program = run(stack, active)
    environment = program.one("bluegreen:index:Environment")
    assert environment.name == f"app-{stack}"
    assert program.exports["color"] == stack
    assert program.exports["is_live"] is (stack == active)


@pytest.mark.parametrize(("stack", "active"), COMBINATIONS)
def test_one_target_group_per_route_tagged_with_color(stack: str, active: str) -> None:
    program = run(stack, active)
    groups = {group.inputs["tags"]["route"]: group for group in program.of_type(TARGET_GROUP)}
    assert set(groups) == {"web", "api"}
    assert groups["web"].inputs["port"] == 8080
    assert groups["api"].inputs["port"] == 8081
    assert groups["web"].inputs["healthCheck"]["path"] == "/health"
    assert groups["web"].inputs["deregistrationDelay"] == 60
    for group in groups.values():
        assert group.inputs["tags"]["color"] == stack
        assert group.inputs["tags"]["app"] == "app"
    assert set(program.exports["target_group_arns"]) == {"web", "api"}


@pytest.mark.parametrize(("stack", "active"), COMBINATIONS)
def test_asg_uses_elb_health_and_exactly_its_own_target_groups(stack: str, active: str) -> None:
    program = run(stack, active)
    group = program.one(ASG)
    own_arns = {tg.outputs["arn"] for tg in program.of_type(TARGET_GROUP)}
    assert group.inputs["healthCheckType"] == "ELB"
    assert set(group.inputs["targetGroupArns"]) == own_arns
    assert set(program.exports["target_group_arns"].values()) == own_arns
    assert all(f"-{stack}-" in arn for arn in own_arns)


@pytest.mark.parametrize(("stack", "active"), COMBINATIONS)
def test_names_and_tags_carry_app_color_and_version(stack: str, active: str) -> None:
    program = run(stack, active, version="2.0.1")
    group = program.one(ASG)
    assert group.inputs["namePrefix"] == f"app-{stack}-2.0.1-"
    assert program.exports["asg_name"].startswith(f"app-{stack}-2.0.1-")
    tags = {tag["key"]: tag["value"] for tag in group.inputs["tags"]}
    assert tags == {"app": "app", "color": stack, "version": "2.0.1", "managed-by": "bluegreen"}
    assert all(tag["propagateAtLaunch"] for tag in group.inputs["tags"])
    template = program.one(LAUNCH_TEMPLATE)
    assert template.inputs["tags"]["version"] == "2.0.1"
    assert template.inputs["tagSpecifications"][0]["tags"]["color"] == stack


@pytest.mark.parametrize(("stack", "active"), COMBINATIONS)
def test_launch_template_runs_the_image_and_the_asg_pins_its_version(stack: str, active: str) -> None:
    program = run(stack, active)
    template = program.one(LAUNCH_TEMPLATE)
    group = program.one(ASG)
    assert template.inputs["imageId"] == AMI
    assert template.inputs["instanceType"] == "t3.micro"
    assert group.inputs["launchTemplate"] == {"id": f"{template.name}-id", "version": "1"}
    assert program.depends_on(group, template)


def test_a_new_image_or_template_replaces_the_asg_create_before_delete() -> None:
    group = run("green", "blue").one(ASG)
    assert "launchTemplate" in group.replace_on_changes
    assert group.delete_before_replace is False


@pytest.mark.parametrize(("stack", "active"), COMBINATIONS)
def test_capacity_is_full_when_live_and_idle_capacity_when_idle(stack: str, active: str) -> None:
    group = run(stack, active, idle_capacity="1", min_size="2", desired_capacity="3", max_size="5").one(ASG)
    if stack == active:
        assert (group.inputs["minSize"], group.inputs["desiredCapacity"], group.inputs["maxSize"]) == (2, 3, 5)
    else:
        assert (group.inputs["minSize"], group.inputs["desiredCapacity"], group.inputs["maxSize"]) == (1, 1, 5)


def test_idle_color_keeps_full_capacity_by_default() -> None:
    group = run("green", "blue", idle_capacity="full").one(ASG)
    assert (group.inputs["minSize"], group.inputs["desiredCapacity"], group.inputs["maxSize"]) == (2, 2, 4)


def test_any_number_of_routes() -> None:
    arn = "arn:aws:elasticloadbalancing:ap-northeast-1:1:listener-rule/app/p/1/2/"
    routes = {name: {"rule_arn": arn + name} for name in ("web", "api", "admin")}
    program = run("blue", "blue", routes=routes)
    assert len(program.of_type(TARGET_GROUP)) == 3
    assert len(program.one(ASG).inputs["targetGroupArns"]) == 3


@pytest.mark.parametrize(("stack", "active"), COMBINATIONS)
def test_traffic_switch_exists_only_in_the_live_stack(stack: str, active: str) -> None:
    switches = run(stack, active).of_type(SWITCH)
    assert len(switches) == (1 if stack == active else 0)


def test_dependencies_run_guard_then_asg_then_gate_then_switch() -> None:
    program = run("green", "green")
    guard, group, gate, switch = (program.one(kind) for kind in (GUARD, ASG, GATE, SWITCH))
    assert program.depends_on(group, guard)
    assert program.depends_on(gate, group)
    assert program.depends_on(switch, gate)
    assert switch.inputs["gate_passed_at"] == gate.outputs["passed_at"]


def test_every_resource_of_the_color_waits_for_the_guard() -> None:
    program = run("blue", "blue")
    guard = program.one(GUARD)
    for kind in (LAUNCH_TEMPLATE, TARGET_GROUP, ASG):
        for resource in program.of_type(kind):
            assert program.depends_on(resource, guard), resource.name


def test_destroy_guard_depends_on_the_group_and_target_groups() -> None:
    program = run("blue", "green")
    destroy_guard, group = program.one(DESTROY_GUARD), program.one(ASG)
    assert program.depends_on(destroy_guard, group)
    assert all(program.depends_on(destroy_guard, tg) for tg in program.of_type(TARGET_GROUP))


def test_gate_expects_the_guarded_capacity_on_the_release_image() -> None:
    program = run("green", "blue", idle_capacity="full", desired_capacity="3", max_size="4")
    gate, guard = program.one(GATE), program.one(GUARD)
    assert gate.inputs["expected_count"] == guard.outputs["desired_capacity"] == 3
    assert gate.inputs["ami_id"] == AMI
    assert gate.inputs["trigger"]["live"] is False
    assert set(gate.inputs["target_group_arns"]) == {"web", "api"}


def test_guard_gets_the_release_and_the_shared_rules() -> None:
    guard = run("green", "blue", version="3.1.4").one(GUARD)
    assert guard.inputs["release"]["version"] == "3.1.4"
    assert guard.inputs["active_color"] == "blue"
    assert set(guard.inputs["rule_arns"]) == {"web", "api"}
    assert guard.inputs["drain_seconds"] == 60


def test_without_image_id_the_release_image_is_baked_after_the_guard() -> None:
    program = run_program("green", active_color="blue", image_id="", version="1.5.0")
    image, guard, template = program.one(BAKED_IMAGE), program.one(GUARD), program.one(LAUNCH_TEMPLATE)
    assert program.depends_on(image, guard)
    assert template.inputs["imageId"] == BAKED_AMI
    assert program.one(GATE).inputs["ami_id"] == BAKED_AMI
    assert image.inputs["version"] == "1.5.0"
    assert image.inputs["template_dir"] == "image"
    assert image.inputs["template_hash"] == template_hash(PROJECT_DIR / "image")
    assert guard.inputs["release"]["template_hash"] == image.inputs["template_hash"]
    assert image.inputs["build_source"] == "real"
    assert image.inputs["variables"]["source_ami_owners"] == ["amazon"]
    assert image.inputs["build_network"]["subnet_id"] == "subnet-0123456789abcdef0"


def test_an_emulator_endpoint_builds_without_provisioning() -> None:
    image = run_program("green", image_id="", endpoint_url="http://127.0.0.1:5000").one(BAKED_IMAGE)
    assert image.inputs["build_source"] == "emulator"
    assert image.inputs["endpoint_url"] == "http://127.0.0.1:5000"


def test_image_id_brings_your_own_ami_and_runs_no_packer() -> None:
    program = run("green", "blue")
    assert program.of_type(BAKED_IMAGE) == []
    assert program.one(LAUNCH_TEMPLATE).inputs["imageId"] == AMI
