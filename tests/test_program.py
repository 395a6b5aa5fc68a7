"""The resource graph the real __main__.py registers, per stack and active_color, read from a preview."""

import json

import pytest

from components.baked_image import template_hash
from tests.aws_world import World
from tests.engine import Engine, Entry, Result
from tests.project import Project
from tests.stack_config import PROJECT_DIR

TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
GROUP = "aws:autoscaling/group:Group"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
PROVIDER = "pulumi:providers:aws"
DYNAMIC = "pulumi-python:dynamic/bluegreen:"
COMBINATIONS = [(stack, active) for stack in ("blue", "green") for active in ("blue", "green")]
AMI = "ami-0123456789abcdef0"


def preview(engine: Engine, project: Project, stack: str, active: str = "blue") -> Result:
    project.promote(active)
    return engine.preview(stack)


def of_type(result: Result, type_: str) -> list[Entry]:
    return [entry for entry in result.registered.values() if entry.type == type_]


def one(result: Result, type_: str) -> Entry:
    found = of_type(result, type_)
    assert len(found) == 1, [entry.name for entry in found]
    return found[0]


def depends_on(dependent: Entry, dependency: Entry) -> bool:
    return dependency.urn in dependent.dependencies


@pytest.mark.parametrize(("stack", "active"), COMBINATIONS)
def test_one_environment_of_the_stack_color(engine: Engine, project: Project, stack: str, active: str) -> None:
    result = preview(engine, project, stack, active)
    assert result.registered[f"app-{stack}"].type == "bluegreen:index:Environment"
    assert result.exports["color"] == stack
    assert result.exports["is_live"] is (stack == active)
    assert len(of_type(result, DYNAMIC + "TrafficSwitch")) == (1 if stack == active else 0)


def test_one_target_group_per_route_tagged_with_its_color(engine: Engine, project: Project) -> None:
    groups = {
        group.inputs["tags"]["route"]: group for group in of_type(preview(engine, project, "green"), TARGET_GROUP)
    }
    assert set(groups) == {"web", "api"}
    assert (groups["web"].inputs["port"], groups["api"].inputs["port"]) == (8080, 8081)
    assert groups["web"].inputs["healthCheck"]["path"] == "/health"
    assert groups["web"].inputs["deregistrationDelay"] == 1
    assert {group.inputs["tags"]["color"] for group in groups.values()} == {"green"}
    assert all(group.inputs["name"].startswith(f"app-green-{route}-") for route, group in groups.items())


def test_group_uses_elb_health_and_its_own_target_groups_and_pins_the_template_version(
    engine: Engine, project: Project
) -> None:
    engine.up("blue")
    result = engine.up("green")
    group, template = one(result, GROUP), one(result, TEMPLATE)
    assert group.inputs["healthCheckType"] == "ELB"
    assert set(group.inputs["targetGroupArns"]) == {tg.outputs["arn"] for tg in of_type(result, TARGET_GROUP)}
    assert group.inputs["launchTemplate"] == {"id": template.id, "version": "1"}
    assert group.replace_on_changes == ["launchTemplate"]
    assert depends_on(group, template)


def test_names_and_tags_carry_app_color_version_and_the_release(engine: Engine, project: Project) -> None:
    project.set("green", "version", "2.0.1")
    result = preview(engine, project, "green")
    group = one(result, GROUP)
    assert group.inputs["namePrefix"] == "app-green-2.0.1-"
    tags = {tag["key"]: (tag["value"], tag["propagateAtLaunch"]) for tag in group.inputs["tags"]}
    assert tags["version"] == ("2.0.1", True) and tags["color"] == ("green", True)
    assert tags["bluegreen:release:version"] == ("2.0.1", False)
    assert tags["bluegreen:release:instance_type"] == ("t3.micro", False)
    assert one(result, TEMPLATE).inputs["tagSpecifications"][0]["tags"]["color"] == "green"


def test_every_aws_resource_uses_the_one_explicit_provider_with_the_endpoint(engine: Engine, project: Project) -> None:
    result = preview(engine, project, "blue")
    provider = one(result, PROVIDER)
    endpoint = project.config("blue")["bluegreen:endpoint_url"]
    assert provider.inputs["region"] == "ap-northeast-1"
    endpoints = json.loads(provider.inputs["endpoints"])[0]  # providers get complex config as JSON
    assert set(endpoints.values()) == {endpoint}
    assert {"autoscaling", "ec2", "elbv2"} <= set(endpoints)
    aws_resources = [entry for entry in result.registered.values() if entry.type.startswith("aws:")]
    assert len(aws_resources) == 4
    assert {entry.provider.rsplit("::", 1)[0] for entry in aws_resources} == {provider.urn}
    for entry in of_type(result, DYNAMIC + "HealthGate") + of_type(result, DYNAMIC + "TrafficSwitch"):
        assert (entry.inputs["region"], entry.inputs["endpoint_url"]) == ("ap-northeast-1", endpoint)


def test_order_is_image_then_group_then_gate_then_switch(engine: Engine, project: Project) -> None:
    result = preview(engine, project, "blue")
    image, template, group = one(result, DYNAMIC + "BakedImage"), one(result, TEMPLATE), one(result, GROUP)
    gate, switch = one(result, DYNAMIC + "HealthGate"), one(result, DYNAMIC + "TrafficSwitch")
    assert depends_on(template, image)
    assert depends_on(gate, group)
    assert depends_on(switch, gate)
    destroy_guard = one(result, DYNAMIC + "DestroyGuard")
    assert depends_on(destroy_guard, group)
    assert all(depends_on(destroy_guard, tg) for tg in of_type(result, TARGET_GROUP))


def test_gate_and_switch_verify_the_planned_count_on_the_release_image(engine: Engine, project: Project) -> None:
    project.set("blue", "desired_capacity", "3")
    engine.up("blue")
    result = engine.preview("blue")
    gate, switch = one(result, DYNAMIC + "HealthGate"), one(result, DYNAMIC + "TrafficSwitch")
    ami = one(result, DYNAMIC + "BakedImage").outputs["ami_id"]
    assert gate.inputs["fitness"]["expected_count"] == 3
    assert gate.inputs["fitness"]["ami_id"] == ami
    assert switch.inputs["fitness"] == gate.inputs["fitness"]
    assert set(gate.inputs["fitness"]["target_group_arns"]) == {"web", "api"}


def test_baked_image_inputs(engine: Engine, project: Project, world: World) -> None:
    project.set("green", "version", "1.5.0")
    image = one(preview(engine, project, "green"), DYNAMIC + "BakedImage")
    assert image.inputs["version"] == "1.5.0"
    assert image.inputs["template_dir"] == "image"
    assert image.inputs["template_hash"] == template_hash(PROJECT_DIR / "image")
    assert image.inputs["build_source"] == "emulator", "an emulator endpoint builds without provisioning"
    assert image.inputs["variables"]["source_ami_owners"] == ["amazon"]
    assert image.inputs["build_network"]["subnet_id"] == world.subnet_ids[0]


def test_image_id_brings_your_own_ami_and_runs_no_packer(engine: Engine, project: Project) -> None:
    project.set("green", "image_id", AMI)
    result = preview(engine, project, "green")
    assert of_type(result, DYNAMIC + "BakedImage") == []
    assert one(result, TEMPLATE).inputs["imageId"] == AMI


def test_any_number_of_routes(engine: Engine, project: Project, world: World) -> None:
    world.add_route("admin")
    project.set_shared("routes", {route: {"rule_arn": arn} for route, arn in world.rule_arns.items()})
    result = preview(engine, project, "blue")
    assert len(of_type(result, TARGET_GROUP)) == 3
    assert len(one(result, GROUP).inputs["targetGroupArns"]) == 3
