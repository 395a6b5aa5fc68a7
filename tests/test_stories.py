"""Release stories: the safety properties (DESIGN.md P1-P9) across whole sequences of previews and ups
of both stacks, driven through the engine model (tests/engine.py) against moto, with traffic read
from moto after each step."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.aws_model import AwsModel
from tests.aws_world import DRAIN_SECONDS, World
from tests.call_recorder import CallRecorder
from tests.engine import Engine, UpdateFailed, up_in_another_process
from tests.project import Project
from tests.provider_host import provider_host

ON_BLUE = {"web": "blue", "api": "blue"}
ON_GREEN = {"web": "green", "api": "green"}
SWITCH = (
    "urn:pulumi:{stack}::bluegreen::pulumi:pulumi:Stack$"
    + "pulumi-python:dynamic/bluegreen:TrafficSwitch::app-{stack}-switch"
)
"""The switch's URN as the SDK's mock monitor forms it (the real engine leaves the stack type out)."""


def green_serves(engine: Engine, project: Project) -> None:
    """Blue takes the traffic on its first release, green is deployed idle, then promoted."""
    engine.up("blue")
    engine.up("green")
    project.promote("green")
    engine.up("green")


def wait_for_drain() -> None:
    time.sleep(DRAIN_SECONDS + 0.2)


@contextmanager
def engine_for(project: Project, world: World) -> Iterator[Engine]:
    with provider_host(cwd=project.root) as host:
        yield Engine(project, AwsModel(world.endpoint), host)


# -- promotion and rollback (P1, P4) ---------------------------------------------------------------------


def test_first_release_takes_the_traffic_from_the_platform_target_group(engine: Engine, world: World) -> None:
    assert set(world.traffic().values()) == {"elsewhere"}
    engine.up("blue")
    assert world.traffic() == ON_BLUE
    assert world.tags(world.client("elbv2"), world.rule_arns["web"])["bluegreen:color"] == "blue"


def test_deploying_the_idle_color_moves_no_traffic_and_promotion_moves_all(
    engine: Engine, project: Project, world: World
) -> None:
    engine.up("blue")
    engine.up("green")
    assert world.traffic() == ON_BLUE
    project.promote("green")
    engine.up("green")
    assert world.traffic() == ON_GREEN


def test_rollback_takes_one_up_without_upping_the_old_color(engine: Engine, project: Project, world: World) -> None:
    green_serves(engine, project)
    project.promote("blue")
    result = engine.up("blue")
    assert world.traffic() == ON_BLUE
    assert result.op("app-blue-switch") == "update"
    assert result.op("app-blue-image") == "same", "a rollback rebuilds nothing"


def test_rollback_after_the_old_color_scaled_to_idle(engine: Engine, project: Project, world: World) -> None:
    project.set("blue", "idle_capacity", "0")
    green_serves(engine, project)
    wait_for_drain()
    engine.up("blue")
    assert world.capacity_of("blue") == (0, 0, 4)
    project.promote("blue")
    result = engine.up("blue")
    assert world.capacity_of("blue") == (2, 2, 4)
    assert world.traffic() == ON_BLUE
    assert result.exports["gate"]["verdict"] == "2 instances fit for traffic"


def test_retry_after_a_failed_switch_takes_a_fresh_verdict(
    engine: Engine,
    project: Project,
    world: World,
    failing_rules: set[str],
    target_health: dict[str, tuple[str, str, str]],
) -> None:
    engine.up("blue")
    engine.up("green")
    project.promote("green")
    failing_rules.add(world.rule_arns["web"])  # the second rule the switch moves
    with pytest.raises(UpdateFailed) as failed:
        engine.up("green")
    assert world.traffic() == ON_BLUE
    assert "traffic restored: api back where they were; web never moved" in str(failed.value)
    assert "RESTORE FAILED" not in str(failed.value)

    failing_rules.clear()
    for instance in world.group("green")["Instances"]:
        target_health[instance["InstanceId"]] = ("unhealthy", "Target.FailedHealthChecks", "502")
    with pytest.raises(UpdateFailed, match=r"not fit for traffic after 3s; traffic was not moved"):
        engine.up("green")
    assert world.traffic() == ON_BLUE

    target_health.clear()
    engine.up("green")
    assert world.traffic() == ON_GREEN


def test_promotion_with_both_stacks_upped_at_once(engine: Engine, project: Project, world: World) -> None:
    """Blue's program reads AWS, green's whole promotion runs in another process, then blue's steps run."""
    project.set("blue", "idle_capacity", "0")
    engine.up("blue")
    engine.up("green")
    project.promote("green")
    other = []
    engine.up("blue", before_steps=lambda: other.append(up_in_another_process(project, world.endpoint, "green")))
    assert other[0].returncode == 0, other[0].stderr
    assert world.traffic() == ON_GREEN
    assert world.capacity_of("blue") == (2, 2, 4), "blue served when its program looked: it keeps its capacity"
    wait_for_drain()
    engine.up("blue")
    assert world.capacity_of("blue") == (0, 0, 4)


def test_promotion_with_the_old_color_upped_between_read_and_switch(
    engine: Engine, project: Project, world: World
) -> None:
    """Green's program reads AWS, blue's whole up runs in another process, then green gates and switches."""
    project.set("blue", "idle_capacity", "0")
    engine.up("blue")
    engine.up("green")
    project.promote("green")
    other = []
    engine.up("green", before_steps=lambda: other.append(up_in_another_process(project, world.endpoint, "blue")))
    assert other[0].returncode == 0, other[0].stderr
    assert world.traffic() == ON_GREEN
    assert world.capacity_of("blue") == (2, 2, 4), "blue still served while its up ran"


# -- the serving color is never touched (P3) ------------------------------------------------------------------


def test_a_release_of_the_serving_color_fails_before_touching_it(
    engine: Engine, project: Project, world: World
) -> None:
    engine.up("blue")
    group = world.group("blue")["AutoScalingGroupName"]
    project.set("blue", "version", "1.4.1")
    with pytest.raises(UpdateFailed, match="blue still serves api and web; deploy to green and promote it instead"):
        engine.preview("blue")
    with pytest.raises(UpdateFailed, match=r"bluegreen:version \(1\.4\.0 -> 1\.4\.1\)"):
        engine.up("blue")
    assert world.group("blue")["AutoScalingGroupName"] == group


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("instance_type", "t3.large"),
        ("key_name", "ops"),
        ("health_check_grace_period", 30),
        ("image_id", "ami-0123456789abcdef0"),
    ],
)
def test_instance_settings_of_the_serving_color_are_a_release(
    engine: Engine, project: Project, key: str, value: object
) -> None:
    engine.up("blue")
    project.set("blue", key, value)
    with pytest.raises(UpdateFailed, match=f"blue still serves.*bluegreen:{key}"):
        engine.up("blue")


def test_target_on_the_group_cannot_release_the_serving_color(engine: Engine, project: Project, world: World) -> None:
    engine.up("blue")
    group = world.group("blue")["AutoScalingGroupName"]
    asg = engine.resource("blue", "app-blue-asg").urn
    project.set("blue", "version", "1.4.1")
    with pytest.raises(UpdateFailed, match="blue still serves"):
        engine.up("blue", targets={asg})
    assert world.group("blue")["AutoScalingGroupName"] == group


def test_target_on_the_switch_takes_a_fresh_verdict(
    engine: Engine, project: Project, world: World, target_health: dict[str, tuple[str, str, str]]
) -> None:
    """`--target` the switch alone: the gate does not run, so the switch's own verdict is what stops it."""
    engine.up("blue")
    engine.up("green")
    project.promote("green")
    for instance in world.group("green")["Instances"]:
        target_health[instance["InstanceId"]] = ("unhealthy", "Target.FailedHealthChecks", "502")
    with pytest.raises(UpdateFailed, match="not fit for traffic"):
        engine.up("green", targets={SWITCH.format(stack="green")})
    assert world.traffic() == ON_BLUE


def test_the_serving_color_is_protected_from_deletes_by_the_engine(engine: Engine) -> None:
    engine.up("blue")
    assert engine.resource("blue", "app-blue-asg").protect
    assert engine.resource("blue", "app-blue-web").protect


def test_destroy_of_the_serving_color_is_refused(engine: Engine, world: World) -> None:
    engine.up("blue")
    with pytest.raises(UpdateFailed, match="blue still serves api, web; refusing to destroy it"):
        engine.destroy("blue")
    assert world.traffic() == ON_BLUE
    assert world.capacity_of("blue") == (2, 2, 4)


def test_autoscaling_that_raised_the_serving_group_is_never_lowered(
    engine: Engine, project: Project, world: World, api_calls: CallRecorder
) -> None:
    engine.up("blue")
    name = world.group("blue")["AutoScalingGroupName"]
    world.client("autoscaling").update_auto_scaling_group(AutoScalingGroupName=name, MaxSize=8, DesiredCapacity=6)
    api_calls.clear()
    assert engine.up("blue").changes() == []
    assert api_calls.writes() == []
    engine.up("blue", refresh=True)
    assert world.capacity_of("blue") == (2, 6, 8)
    project.set("blue", "max_size", "5")
    result = engine.up("blue")
    assert world.capacity_of("blue") == (2, 6, 8)
    assert "AWS reports more than config" in result.exports["capacity"]["note"]


def test_the_old_color_keeps_its_capacity_while_draining_then_scales_to_idle(
    engine: Engine, project: Project, world: World
) -> None:
    project.set("blue", "idle_capacity", "1")
    green_serves(engine, project)
    draining = engine.up("blue")
    assert "draining until" in draining.exports["capacity"]["note"]
    assert world.capacity_of("blue") == (2, 2, 4)
    wait_for_drain()
    engine.up("blue")
    assert world.capacity_of("blue") == (1, 1, 4)


# -- the image (P3, P9) -----------------------------------------------------------------------------------


def test_a_template_edit_waits_for_the_live_colors_next_release(tmp_path: Path, world: World) -> None:
    world.build_load_balancer()
    project = Project.create(tmp_path / "project", world.project_config(), copy_image=True)
    with engine_for(project, world) as engine:
        engine.up("blue")
        engine.up("green")
        ami = world.group("blue")["Instances"][0]
        defaults = project.root / "image" / "ansible" / "roles" / "app" / "defaults" / "main.yml"
        defaults.write_text(defaults.read_text() + "app_extra: 1\n")

        preview = engine.preview("blue")
        assert preview.changes() == []
        assert any("waits for blue's next release" in warning for warning in preview.warnings())
        assert engine.up("blue").changes() == []
        assert world.group("blue")["Instances"][0]["InstanceId"] == ami["InstanceId"]

        result = engine.up("green")
        assert result.op("app-green-image") == "replace"
        assert result.op("app-green-asg") == "replace"


def test_a_build_setting_change_never_deregisters_an_image_in_use(
    engine: Engine, project: Project, world: World
) -> None:
    engine.up("blue")
    first = engine.up("green").exports["ami_id"]
    project.set_shared("artifact_repository", "s3://another-repository/releases")
    result = engine.up("green")
    assert result.exports["ami_id"] != first, "other build settings are another image, never a reuse"
    assert set(world.images_in_use().values()) == {"available"}
    assert engine.up("blue").changes() == [], "the serving color keeps its image"
    assert set(world.images_in_use().values()) == {"available"}


def test_an_image_both_colors_run_outlives_either_release(engine: Engine, project: Project, world: World) -> None:
    project.set("green", "version", "1.4.0")
    engine.up("blue")
    shared = engine.up("green").exports["ami_id"]
    assert engine.resource("blue", "app-blue-image").id == shared
    project.set("green", "version", "1.5.0")
    engine.up("green")
    assert world.images_in_use()[shared] == "available"


# -- what the gate verifies (P1, P2) ------------------------------------------------------------------------


def test_deploying_the_idle_color_verifies_it_at_live_capacity(engine: Engine, world: World) -> None:
    engine.up("blue")
    result = engine.up("green")  # Pulumi.green.yaml sets idle_capacity 0
    assert world.capacity_of("green") == (2, 2, 4)
    assert result.exports["gate"]["verdict"] == "2 instances fit for traffic"


def test_a_gate_on_zero_instances_is_no_pass(engine: Engine, project: Project) -> None:
    project.set("blue", "idle_capacity", "0")
    green_serves(engine, project)
    wait_for_drain()
    result = engine.up("blue")
    assert result.exports["gate"] == {"passed_at": "", "verdict": "nothing verified: 0 instances"}


# -- drift and config (P7, P8) ----------------------------------------------------------------------------


def test_drift_by_hand_is_reported_and_never_moved_back(engine: Engine, world: World, api_calls: CallRecorder) -> None:
    engine.up("blue")
    engine.up("green")
    world.move_by_hand("web", "green")
    for stack in ("blue", "green"):
        preview = engine.preview(stack)
        assert any("web: forwards to green by hand" in warning for warning in preview.warnings()), stack
        assert "web" in preview.exports["drift"]
    api_calls.clear()
    assert engine.up("blue").changes() == []
    engine.up("blue", refresh=True)
    assert api_calls.writes() == []
    assert world.traffic() == {"web": "green", "api": "blue"}


def test_switch_refuses_to_take_back_rules_moved_by_hand(engine: Engine, project: Project, world: World) -> None:
    engine.up("blue")
    engine.up("green")
    world.move_by_hand("web", "green")
    world.move_by_hand("api", "green")
    project.set("blue", "version", "1.4.1")  # blue serves nothing now, so a release is allowed
    with pytest.raises(UpdateFailed, match="This update did not make blue live"):
        engine.up("blue")
    assert world.traffic() == ON_GREEN


def test_active_color_in_a_stack_file_fails_at_startup(
    engine: Engine, project: Project, api_calls: CallRecorder
) -> None:
    project.set("green", "active_color", "green")
    with pytest.raises(UpdateFailed, match=r"active_color is set in Pulumi\.green\.yaml.*belongs in Pulumi\.yaml"):
        engine.up("green")
    assert engine.resources("green") == []
    assert api_calls.writes() == []


def test_a_rule_that_does_not_exist_fails_naming_its_route(engine: Engine, project: Project, world: World) -> None:
    missing = world.rule_arns["web"][:-4] + "0000"
    routes = {"web": {"rule_arn": missing}, "api": {"rule_arn": world.rule_arns["api"]}}
    project.set_shared("routes", routes)
    with pytest.raises(UpdateFailed, match=f"bluegreen:routes.web.rule_arn names no existing listener rule: {missing}"):
        engine.preview("blue")


# -- previews (P5) and repeated ups (P6) --------------------------------------------------------------------


def test_first_preview_of_a_live_stack_shows_the_plan_and_changes_nothing(
    engine: Engine, world: World, api_calls: CallRecorder
) -> None:
    result = engine.preview("blue")
    assert {step.op for step in result.steps} == {"create"}
    assert result.exports["capacity"]["desired"] == 2
    assert result.exports["traffic"] == {
        "web": "a target group outside bluegreen -> blue",
        "api": "a target group outside bluegreen -> blue",
    }
    assert api_calls.writes() == []
    assert set(world.traffic().values()) == {"elsewhere"}


def test_preview_of_a_promotion_shows_capacities_and_the_rules_that_move(engine: Engine, project: Project) -> None:
    engine.up("blue")
    engine.up("green")
    project.promote("green")
    green = engine.preview("green")
    assert green.exports["traffic"] == {"web": "blue -> green", "api": "blue -> green"}
    assert green.op("app-green-switch") == "create"
    assert (green.exports["capacity"]["min_size"], green.exports["capacity"]["desired"]) == (2, 2)
    blue = engine.preview("blue")
    assert blue.exports["traffic"] == {"web": "blue -> green", "api": "blue -> green"}
    assert "still serves api and web" in blue.exports["capacity"]["note"]
    assert blue.op("app-blue-switch") == "delete"


def test_preview_of_a_version_bump_of_the_idle_color(engine: Engine, project: Project, api_calls: CallRecorder) -> None:
    engine.up("blue")
    engine.up("green")
    project.set("green", "version", "1.6.0")
    api_calls.clear()
    result = engine.preview("green")
    assert result.op("app-green-image") == "replace"
    assert result.op("app-green-asg") == "replace"
    assert result.op("app-green-gate") == "update"
    assert result.exports["capacity"]["desired"] == 2
    assert api_calls.writes() == []


def test_an_unchanged_up_changes_nothing_anywhere(engine: Engine, project: Project, api_calls: CallRecorder) -> None:
    green_serves(engine, project)
    engine.up("blue")
    api_calls.clear()
    for stack in ("blue", "green"):
        assert engine.up(stack).changes() == [], stack
    assert api_calls.writes() == []
