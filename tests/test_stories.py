"""Release stories: the safety properties (DESIGN.md P1-P9) across whole sequences of previews and ups
of both stacks, driven through the engine model (tests/engine.py) against moto, with traffic read
from moto after each step."""

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.aws_model import AwsModel
from tests.aws_world import DRAIN_SECONDS, World
from tests.call_recorder import CallRecorder
from tests.engine import Engine, UpdateFailed, up_in_another_process
from tests.packer_spy import PackerSpy
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


def test_stack_outputs_say_what_runs_where(engine: Engine, project: Project, world: World) -> None:
    green_serves(engine, project)
    exports = engine.up("green").exports
    green_groups = exports["target_group_arns"]
    assert exports["routes"] == {
        route: {"color": "green", "target_group_arns": [green_groups[route]]} for route in ("web", "api")
    }
    assert exports["switched_at"] == engine.resource("green", "app-green-switch").outputs["switched_at"]
    assert exports["gate"]["passed_at"] and exports["version"] == "1.5.0"
    assert exports["capacity"]["desired"] == 2 and exports["drift"] == {}


def test_rollback_takes_one_up_without_upping_the_old_color(engine: Engine, project: Project, world: World) -> None:
    green_serves(engine, project)
    project.promote("blue")
    result = engine.up("blue")
    assert world.traffic() == ON_BLUE
    assert result.op("app-blue-switch") == "update"
    assert result.op("app-blue-image") == "same", "a rollback rebuilds nothing"


@pytest.mark.parametrize("min_size", [2, 0])
def test_rollback_after_the_old_color_scaled_to_idle(
    engine: Engine, project: Project, world: World, min_size: int
) -> None:
    """Back from 0 instances at live capacity first, verified, never onto an empty color (min_size 0 too)."""
    project.set("blue", "min_size", min_size)
    project.set("blue", "idle_capacity", "0")
    green_serves(engine, project)
    wait_for_drain()
    engine.up("blue")
    assert world.capacity_of("blue") == (0, 0, 4)
    project.promote("blue")
    result = engine.up("blue")
    assert world.capacity_of("blue") == (min_size, 2, 4)
    assert world.traffic() == ON_BLUE
    assert result.exports["gate"]["verdict"] == "2 instances fit for traffic"


def test_retry_after_a_failed_switch_takes_a_fresh_verdict(
    engine: Engine,
    project: Project,
    world: World,
    failing_rules: set[str],
    target_health: dict[Any, tuple[str, str, str]],
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


def test_promotion_after_the_idle_color_turned_unhealthy_moves_nothing(
    engine: Engine,
    project: Project,
    world: World,
    target_health: dict[Any, tuple[str, str, str]],
    api_calls: CallRecorder,
) -> None:
    """Green's gate passed when it was deployed; by the promotion its instances fail: no old pass counts."""
    engine.up("blue")
    engine.up("green")
    sick = world.group("green")["Instances"][0]["InstanceId"]
    target_health[sick] = ("unhealthy", "Target.FailedHealthChecks", "502")
    project.promote("green")
    api_calls.clear()
    with pytest.raises(UpdateFailed, match="not fit for traffic"):
        engine.up("green")
    assert world.traffic() == ON_BLUE
    assert "ModifyRule" not in api_calls.operations(), "no rule moved, not even for a moment"


def promote_green_with_both_stacks_at_once(engine: Engine, project: Project, world: World, first: str) -> None:
    """`first`'s program reads AWS, the other stack's whole up runs in another process, then `first`'s steps run."""
    project.set("blue", "idle_capacity", "0")
    engine.up("blue")
    engine.up("green")
    project.promote("green")
    second = "green" if first == "blue" else "blue"
    other = []
    engine.up(first, before_steps=lambda: other.append(up_in_another_process(project, world.endpoint, second)))
    assert other[0].returncode == 0, other[0].stderr


def test_promotion_with_both_stacks_upped_at_once(engine: Engine, project: Project, world: World) -> None:
    promote_green_with_both_stacks_at_once(engine, project, world, first="blue")
    assert world.traffic() == ON_GREEN
    assert world.capacity_of("blue") == (2, 2, 4), "blue served when its program looked: it keeps its capacity"
    wait_for_drain()
    engine.up("blue")
    assert world.capacity_of("blue") == (0, 0, 4)


def test_promotion_with_the_old_color_upped_between_read_and_switch(
    engine: Engine, project: Project, world: World
) -> None:
    promote_green_with_both_stacks_at_once(engine, project, world, first="green")
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
        ("security_group_ids", ["sg-0123456789abcdef0"]),
        ("instance_profile", "other-instance"),
        ("subnet_ids", ["subnet-0123456789abcdef0"]),
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


def test_route_health_checks_of_the_serving_color_are_a_release(engine: Engine, project: Project, world: World) -> None:
    engine.up("blue")
    routes = {route: {"rule_arn": arn, "health_check_path": "/ready"} for route, arn in world.rule_arns.items()}
    project.set_shared("routes", routes)
    with pytest.raises(UpdateFailed, match=r"blue still serves.*bluegreen:routes"):
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
    engine: Engine, project: Project, world: World, target_health: dict[Any, tuple[str, str, str]]
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


def test_the_old_color_keeps_its_capacity_while_draining(engine: Engine, project: Project, world: World) -> None:
    routes = {route: {"rule_arn": arn, "deregistration_delay": 300} for route, arn in world.rule_arns.items()}
    project.set_shared("routes", routes)
    project.set("blue", "idle_capacity", "1")
    green_serves(engine, project)
    draining = engine.up("blue")
    assert "draining until" in draining.exports["capacity"]["note"]
    assert "the first update after that scales it to 1" in draining.exports["capacity"]["note"]
    assert world.capacity_of("blue") == (2, 2, 4)


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
    assert green.exports["summary"] == (
        "green: release 1.5.0 unchanged; capacity min 2, desired 2, max 4 (unchanged); "
        "traffic: api and web move blue -> green"
    )
    blue = engine.preview("blue")
    assert blue.exports["traffic"] == {"web": "blue -> green", "api": "blue -> green"}
    assert blue.exports["summary"].endswith("traffic: api and web move blue -> green")
    assert "still serves api and web" in blue.exports["capacity"]["note"]
    assert blue.op("app-blue-switch") == "delete"


def test_preview_of_a_version_bump_of_the_idle_color(engine: Engine, project: Project, api_calls: CallRecorder) -> None:
    engine.up("blue")
    engine.up("green")
    project.set("green", "version", "1.6.0")
    api_calls.clear()
    result = engine.preview("green")
    group = engine.resource("green", "app-green-asg").id
    assert result.exports["summary"] == (
        f"green: release 1.5.0 -> 1.6.0 (version changed): bake a new image, replace group {group}; "
        "capacity min 2, desired 2, max 4; traffic: serves nothing"
    )
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


# -- secrets -----------------------------------------------------------------------------------------------


def test_a_secret_appears_nowhere_in_the_clear(
    project: Project, world: World, smoke_server: str, packer_spy: PackerSpy
) -> None:
    proxy = "http://deploy:PR0XY-PASS@proxy.example.com:3128"
    repository = "https://deploy:REP0-PASS@repo.example.com/maven2"
    smoke = smoke_server + "/health?token=SM0KE-TOKEN"
    project.set_shared("http_proxy", proxy)
    project.set_shared("artifact_repository", repository)
    project.set("blue", "smoke_checks", [{"url": smoke, "expected_status": 200}])
    with engine_for(project, world) as engine:  # started after the spy is on PATH
        result = engine.up("blue")
        preview = engine.preview("blue")
        state = engine.resources("blue")
    secrets = ("PR0XY-PASS", "REP0-PASS", "SM0KE-TOKEN")
    shown = "\n".join([*result.progress, *preview.progress, *(m for _, m in result.logs + preview.logs)])
    shown += json.dumps([result.exports, preview.exports], default=str)
    for run in packer_spy.runs():
        shown += " ".join(run["argv"])
    plain = [
        json.dumps({**entry.inputs, **entry.outputs}[key])
        for entry in state
        for key in {*entry.inputs, *entry.outputs}
        if key not in entry.secret_outputs
    ]
    for secret in secrets:
        assert secret not in shown, secret
        assert not [value for value in plain if secret in value], secret
    assert packer_spy.runs()[0]["variables"]["http_proxy"] == proxy, "the secret reaches Packer, by environment"


# -- traffic hooks -----------------------------------------------------------------------------------------

HOOK = f"{sys.executable} {Path(__file__).resolve().parent / 'hooks' / 'record.py'}"


@pytest.fixture
def hook_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "hooks.jsonl"
    log.write_text("")
    monkeypatch.setenv("HOOK_LOG", str(log))
    return log


def hook_runs(log: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_hooks_run_gate_then_before_hooks_then_switch_then_after_hooks(
    engine: Engine, project: Project, world: World, hook_log: Path
) -> None:
    project.set_shared("hooks", {"before_allow_traffic": [HOOK], "after_allow_traffic": [HOOK, HOOK]})
    result = engine.up("blue")
    before, *after = hook_runs(hook_log)
    passed_at = result.exports["gate"]["passed_at"]
    switched_at = engine.resource("blue", "app-blue-switch").outputs["switched_at"]
    assert passed_at < before["at"] < switched_at < after[0]["at"] <= after[1]["at"]
    assert [run["BLUEGREEN_HOOK_PHASE"] for run in after] == ["after_allow_traffic"] * 2
    assert (before["BLUEGREEN_COLOR"], before["BLUEGREEN_VERSION"]) == ("blue", "1.4.0")
    assert before["BLUEGREEN_AMI_ID"] == result.exports["ami_id"]
    assert before["BLUEGREEN_ASG_NAME"] == result.exports["asg_name"]
    assert json.loads(before["BLUEGREEN_TARGET_GROUP_ARNS"]) == result.exports["target_group_arns"]
    assert len(json.loads(before["BLUEGREEN_INSTANCE_IDS"])) == 2
    assert "hook before_allow_traffic saw blue 1.4.0" in result.progress, "a hook's output streams to the user"


def test_an_idle_release_runs_its_before_hooks_after_its_gate(engine: Engine, project: Project, hook_log: Path) -> None:
    project.set_shared("hooks", {"before_allow_traffic": [HOOK], "after_allow_traffic": [HOOK]})
    engine.up("blue")
    hook_log.write_text("")
    engine.up("green")
    assert [(run["BLUEGREEN_COLOR"], run["BLUEGREEN_HOOK_PHASE"]) for run in hook_runs(hook_log)] == [
        ("green", "before_allow_traffic")
    ]


def test_hooks_rerun_only_when_the_release_or_the_traffic_changes(
    engine: Engine, project: Project, hook_log: Path
) -> None:
    project.set_shared("hooks", {"before_allow_traffic": [HOOK], "after_allow_traffic": [HOOK]})
    engine.up("blue")
    engine.up("green")
    hook_log.write_text("")
    engine.preview("green")
    engine.up("green")
    engine.up("blue")
    assert hook_runs(hook_log) == [], "no preview and no unchanged up runs a hook"
    project.promote("green")
    engine.preview("green")
    assert hook_runs(hook_log) == []
    engine.up("green")
    assert [run["BLUEGREEN_HOOK_PHASE"] for run in hook_runs(hook_log)] == [
        "before_allow_traffic",
        "after_allow_traffic",
    ]
    hook_log.write_text("")
    engine.up("blue")
    assert hook_runs(hook_log) == [], "a demoted color's hooks do not run again"
    wait_for_drain()  # blue was demoted: its release waits for the drain
    project.set("blue", "version", "1.6.0")
    engine.up("blue")
    assert [run["BLUEGREEN_HOOK_PHASE"] for run in hook_runs(hook_log)] == ["before_allow_traffic"]


def test_a_failing_before_hook_moves_nothing(engine: Engine, project: Project, world: World, hook_log: Path) -> None:
    engine.up("blue")
    project.set("green", "hooks", {"before_allow_traffic": [f"{HOOK} fail"]})
    with pytest.raises(UpdateFailed, match="before_allow_traffic hook 1 failed: traffic was not moved"):
        engine.up("green")
    project.promote("green")
    with pytest.raises(UpdateFailed, match="the smoke test found a problem"):
        engine.up("green")
    assert world.traffic() == ON_BLUE


def test_a_failing_after_hook_says_how_to_roll_back(
    engine: Engine, project: Project, world: World, hook_log: Path
) -> None:
    engine.up("blue")
    engine.up("green")
    project.set("green", "hooks", {"after_allow_traffic": [f"{HOOK} fail"]})
    project.promote("green")
    with pytest.raises(UpdateFailed, match=r"traffic is on green now\. To roll back, set active_color: blue"):
        engine.up("green")
    assert world.traffic() == ON_GREEN


# -- found in review: each failed before its fix -------------------------------------------------------


def _weighted_by_hand(world: World, route: str, weights: dict[str, int]) -> None:
    elbv2 = world.client("elbv2")
    groups = []
    for group in elbv2.describe_target_groups()["TargetGroups"]:
        tags = world.tags(elbv2, group["TargetGroupArn"])
        if tags.get("app") == "app" and tags.get("route") == route and tags.get("color") in weights:
            groups.append({"TargetGroupArn": group["TargetGroupArn"], "Weight": weights[tags["color"]]})
    action = {"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}
    elbv2.modify_rule(RuleArn=world.rule_arns[route], Actions=[action])


def test_a_color_with_a_share_of_a_rule_serves_and_gets_no_release(
    engine: Engine, project: Project, world: World
) -> None:
    engine.up("blue")
    engine.up("green")
    _weighted_by_hand(world, "web", {"blue": 90, "green": 10})
    project.set("green", "version", "1.6.0")
    with pytest.raises(UpdateFailed, match="green still serves web"):
        engine.up("green")


def test_a_rollback_after_an_image_edit_rebuilds_nothing(tmp_path: Path, world: World) -> None:
    world.build_load_balancer()
    project = Project.create(tmp_path / "project", world.project_config(), copy_image=True)
    with engine_for(project, world) as engine:
        green_serves(engine, project)
        defaults = project.root / "image" / "ansible" / "roles" / "app" / "defaults" / "main.yml"
        defaults.write_text(defaults.read_text() + "app_extra: 1\n")
        image = engine.resource("blue", "app-blue-image").id
        project.promote("blue")
        result = engine.up("blue")
        assert world.traffic() == ON_BLUE
        assert result.op("app-blue-image") == "same" and engine.resource("blue", "app-blue-image").id == image
        assert any("waits for blue's next release" in warning for warning in result.warnings())


def test_a_rollback_with_a_release_change_is_refused_before_anything(
    engine: Engine, project: Project, world: World, api_calls: CallRecorder
) -> None:
    green_serves(engine, project)
    project.set("blue", "instance_type", "t3.large")
    project.promote("blue")
    api_calls.clear()
    with pytest.raises(UpdateFailed, match=r"blue takes the traffic in this update .* bluegreen:instance_type"):
        engine.up("blue")
    assert api_calls.writes() == []
    assert world.traffic() == ON_GREEN


def test_a_switch_that_dies_before_its_final_tags_is_rolled_back_in_one_up(
    engine: Engine, project: Project, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.elbv2 import models
    from moto.elbv2.exceptions import ELBClientError

    engine.up("blue")
    engine.up("green")
    original = models.ELBv2Backend.add_tags

    def add_tags(self: Any, resource_arns: Any, tags: Any) -> Any:
        if any(tag["Key"] == "bluegreen:color" for tag in tags):
            raise ELBClientError("OperationNotPermitted", "the runner died here")
        return original(self, resource_arns, tags)

    project.promote("green")
    with monkeypatch.context() as patch:
        patch.setattr(models.ELBv2Backend, "add_tags", add_tags)
        with pytest.raises(UpdateFailed):
            engine.up("green")
    assert world.traffic() == ON_GREEN, "every rule moved; only the final tags are missing"
    project.promote("blue")
    preview = engine.preview("blue")
    assert preview.warnings() == [], "the switch's own tag tells it from a hand-made move"
    engine.up("blue")
    assert world.traffic() == ON_BLUE


def test_raising_desired_capacity_in_config_is_applied(engine: Engine, project: Project, world: World) -> None:
    engine.up("blue")
    project.set("blue", "desired_capacity", "3")
    engine.up("blue")
    assert world.capacity_of("blue") == (2, 3, 4)


def test_a_group_without_release_tags_is_adopted_not_refused(engine: Engine, world: World) -> None:
    engine.up("blue")
    group = world.group("blue")
    recorded = [tag for tag in group["Tags"] if tag["Key"].startswith("bluegreen:release:")]
    world.client("autoscaling").delete_tags(
        Tags=[{**{k: tag[k] for k in ("ResourceId", "ResourceType", "Key")}} for tag in recorded]
    )
    result = engine.up("blue")
    assert any("has no record of version" in warning for warning in result.warnings())
    engine.up("blue", refresh=True)
    assert {tag["Key"] for tag in world.group("blue")["Tags"]} >= {tag["Key"] for tag in recorded}


def test_a_promotion_detaches_a_leftover_group_before_traffic_moves(
    engine: Engine, project: Project, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Green 1.6.0's gate failed, so green's 1.5.0 group waits for its delete, still in green's target groups."""
    from moto.elbv2 import models

    engine.up("blue")
    engine.up("green")
    old = {instance["InstanceId"] for instance in world.group("green")["Instances"]}
    project.set("green", "version", "1.6.0")
    healthy = models.FakeTargetGroup.health_for
    failing = {"on": True}

    def health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
        if failing["on"] and target["Id"] not in old:
            return models.FakeHealthStatus(target["Id"], self.port, self.health_check_port, "unhealthy", "", "")
        return healthy(self, target, ec2_backend)

    monkeypatch.setattr(models.FakeTargetGroup, "health_for", health_for)
    with pytest.raises(UpdateFailed, match="not fit"):
        engine.up("green")
    assert len(world.groups("green")) == 2
    failing["on"] = False
    registered_at_moves: list[set[str]] = []
    modify_rule = models.ELBv2Backend.modify_rule

    def recording_modify_rule(self: Any, rule_arn: str, *args: Any, **kwargs: Any) -> Any:
        groups = {tg.arn: tg for tg in self.target_groups.values()}
        green_web = next(tg for tg in groups.values() if tg.name.startswith("app-green-web"))
        registered_at_moves.append(set(green_web.targets))
        return modify_rule(self, rule_arn, *args, **kwargs)

    monkeypatch.setattr(models.ELBv2Backend, "modify_rule", recording_modify_rule)
    project.promote("green")
    result = engine.up("green")
    assert world.traffic() == ON_GREEN
    assert any("detached app-green-1.5.0-" in line for line in result.progress)
    assert registered_at_moves and all(not (registered & old) for registered in registered_at_moves)


def test_an_idle_release_deregisters_the_old_image(engine: Engine, project: Project, world: World) -> None:
    engine.up("blue")
    old = engine.up("green").exports["ami_id"]
    project.set("green", "version", "1.6.0")
    engine.up("green")
    images = world.client("ec2").describe_images(ImageIds=[old])["Images"]
    assert images == [] or images[0]["State"] == "deregistered", "the old image leaks"


def test_a_template_version_made_in_the_console_does_not_replace_the_group(
    engine: Engine, project: Project, world: World
) -> None:
    engine.up("blue")
    engine.up("green")
    template = engine.resource("green", "app-green-template").id
    world.client("ec2").create_launch_template_version(
        LaunchTemplateId=template, LaunchTemplateData={"ImageId": world.amazon_linux_amis()[0]}
    )
    engine.refresh("green")
    result = engine.up("green")
    assert result.op("app-green-asg") == "same"


def test_a_release_of_a_just_demoted_color_waits_for_the_drain(engine: Engine, project: Project, world: World) -> None:
    routes = {route: {"rule_arn": arn, "deregistration_delay": 300} for route, arn in world.rule_arns.items()}
    project.set_shared("routes", routes)
    green_serves(engine, project)
    project.set("blue", "version", "1.4.1")
    with pytest.raises(UpdateFailed, match=r"blue may have served traffic until .*: its group .* drains until"):
        engine.preview("blue")


def test_destroy_of_an_idle_color_works_after_a_production_rule_was_deleted(engine: Engine, world: World) -> None:
    engine.up("blue")
    engine.up("green")
    world.client("elbv2").delete_rule(RuleArn=world.rule_arns["api"])
    engine.destroy("green")
    assert world.groups("green") == []


def test_a_hook_that_hangs_is_stopped_at_its_timeout(engine: Engine, project: Project) -> None:
    engine.up("blue")
    project.set_shared("hook_timeout_seconds", 1)
    project.set("green", "hooks", {"before_allow_traffic": ["sleep 60"]})
    started = time.monotonic()
    with pytest.raises(UpdateFailed, match="timed out after 1 s"):
        engine.up("green")
    assert time.monotonic() - started < 30
