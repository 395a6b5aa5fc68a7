"""Weighted steps, automatic rollback on alarms, interrupted promotions, and test routes, as release
stories against moto (CloudWatch alarms included), through the engine model."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.aws_world import REGION, World
from tests.call_recorder import CallRecorder
from tests.engine import Engine, UpdateFailed
from tests.project import Project
from tests.stack_config import PROJECT_DIR

ON_BLUE = {"web": "blue", "api": "blue"}
ON_GREEN = {"web": "green", "api": "green"}
ALARM = "app-5xx"


class RuleMoves:
    """Every modify_rule moto applies, as {target group: weight}, with callbacks to act at a given move."""

    def __init__(self) -> None:
        self.moves: list[tuple[str, dict[str, int]]] = []
        self.callbacks: list[Callable[[str, dict[str, int]], None]] = []

    def record(self, rule_arn: str, actions: list[dict[str, Any]]) -> None:
        forward = next(action for action in actions if action["Type"] == "forward")
        groups = forward.get("ForwardConfig", {}).get("TargetGroups")
        weights = {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups} if groups else {}
        weights = weights or {forward["TargetGroupArn"]: 1}
        self.moves.append((rule_arn, weights))
        for callback in self.callbacks:
            callback(rule_arn, weights)

    def shares(self, rule_arn: str, target_group: str) -> list[int]:
        """Percent of the rule's traffic on `target_group` after each of its moves."""
        return [
            round(100 * weights.get(target_group, 0) / sum(weights.values()))
            for arn, weights in self.moves
            if arn == rule_arn
        ]


@pytest.fixture
def rule_moves(monkeypatch: pytest.MonkeyPatch) -> RuleMoves:
    from moto.elbv2 import models

    moves = RuleMoves()
    original = models.ELBv2Backend.modify_rule

    def modify_rule(self: Any, rule_arn: str, conditions: Any, actions: list[dict[str, Any]]) -> Any:
        result = original(self, rule_arn, conditions, actions)
        moves.record(rule_arn, actions)
        return result

    monkeypatch.setattr(models.ELBv2Backend, "modify_rule", modify_rule)
    return moves


def set_alarm(state: str, reason: str = "5xx above 1 % for 1 minute") -> None:
    """What CloudWatch does when the metric crosses the threshold (moto, in this process)."""
    from moto.cloudwatch.models import cloudwatch_backends

    cloudwatch_backends["123456789012"][REGION].set_alarm_state(ALARM, reason, "{}", state)


@pytest.fixture
def alarm(world: World) -> str:
    world.create_alarm(ALARM)
    return ALARM


def deploy_green_with_steps(engine: Engine, project: Project, steps: list[int], **rollout: Any) -> dict[str, str]:
    """Blue serves, green is deployed idle, then the rollout settings go into Pulumi.yaml.

    Returns green's target groups.
    """
    engine.up("blue")
    green = engine.up("green").exports["target_group_arns"]
    project.set_shared("traffic_steps", steps)
    for key, value in {"step_wait_seconds": 1, "bake_seconds": 0, **rollout}.items():
        project.set_shared(key, value)
    return green


def test_a_promotion_moves_every_rule_through_the_configured_steps(
    engine: Engine, project: Project, world: World, rule_moves: RuleMoves
) -> None:
    green = deploy_green_with_steps(engine, project, [10, 50, 100])
    project.promote("green")
    result = engine.up("green")
    for route, arn in world.rule_arns.items():
        assert rule_moves.shares(arn, green[route])[-3:] == [10, 50, 100], route
    assert world.traffic() == ON_GREEN
    assert "[switch green] step 2/3: 50 % to green, no rollback alarms, 1 s left" in result.progress
    assert not world.tags(world.client("elbv2"), world.rule_arns["web"]).get("bluegreen:moving-to")


def test_an_alarm_at_step_two_puts_everything_back_on_the_old_color(
    engine: Engine, project: Project, world: World, rule_moves: RuleMoves, alarm: str
) -> None:
    green = deploy_green_with_steps(engine, project, [10, 50, 100], rollback_alarms=[alarm], step_wait_seconds=3)
    rule_moves.callbacks.append(lambda arn, weights: weights.get(green["web"]) == 50 and set_alarm("ALARM"))
    project.promote("green")
    with pytest.raises(UpdateFailed) as failed:
        engine.up("green")
    message = str(failed.value)
    assert "promotion of green rolled back at step 2/3: 50 % to green" in message
    assert f"alarm {alarm} is in ALARM (5xx above 1 % for 1 minute)" in message
    assert "every rule is back on the target group it came from, all of its traffic (api, web)" in message
    assert world.traffic() == ON_BLUE
    assert world.capacity_of("blue") == (2, 2, 4), "the old color kept its capacity"
    assert 100 not in rule_moves.shares(world.rule_arns["web"], green["web"])


def test_an_alarm_in_the_bake_window_rolls_back(
    engine: Engine, project: Project, world: World, rule_moves: RuleMoves, alarm: str
) -> None:
    green = deploy_green_with_steps(engine, project, [100], rollback_alarms=[alarm], bake_seconds=3)
    rule_moves.callbacks.append(lambda arn, weights: weights.get(green["web"]) == 1 and set_alarm("ALARM"))
    project.promote("green")
    with pytest.raises(UpdateFailed, match=rf"rolled back at step 1/1: 100 % to green: alarm {alarm} is in ALARM"):
        engine.up("green")
    assert world.traffic() == ON_BLUE


def test_a_gate_failure_during_the_steps_rolls_back(
    engine: Engine,
    project: Project,
    world: World,
    rule_moves: RuleMoves,
    target_health: dict[Any, tuple[str, str, str]],
) -> None:
    green = deploy_green_with_steps(engine, project, [20, 100], step_wait_seconds=3)
    sick = world.group("green")["Instances"][0]["InstanceId"]
    rule_moves.callbacks.append(
        lambda arn, weights: weights.get(green["web"]) == 20 and target_health.update({sick: ("unhealthy", "", "")})
    )
    project.promote("green")
    with pytest.raises(UpdateFailed, match="rolled back at step 1/2: 20 % to green: the color is no longer fit"):
        engine.up("green")
    assert world.traffic() == ON_BLUE


def test_an_interrupted_promotion_is_finished_by_the_next_up_and_untouched_by_the_idle_stack(
    engine: Engine, project: Project, world: World, api_calls: CallRecorder
) -> None:
    deploy_green_with_steps(engine, project, [10, 50, 100], step_wait_seconds=60)
    project.promote("green")
    killed = kill_during_steps(project, world, "green")
    assert killed == {"web": "blue / green", "api": "blue / green"}, "the rules were left weighted"
    idle = engine.preview("blue")
    assert "an interrupted move to green; green's switch finishes it" in " ".join(m for _, m in idle.logs)
    api_calls.clear()
    engine.up("blue")
    assert "ModifyRule" not in api_calls.operations(), "an idle stack never touches weights"
    assert world.capacity_of("blue") == (2, 2, 4)
    project.set_shared("step_wait_seconds", 1)
    result = engine.up("green")
    assert world.traffic() == ON_GREEN
    assert "[switch green] step 1/2: 50 % to green" in result.progress, "it resumes after the step that was reached"


def test_an_interrupted_promotion_is_reverted_when_intent_went_back(
    engine: Engine, project: Project, world: World
) -> None:
    deploy_green_with_steps(engine, project, [10, 50, 100], step_wait_seconds=60)
    project.promote("green")
    kill_during_steps(project, world, "green")
    project.promote("blue")
    preview = engine.preview("blue")
    assert "an interrupted move to green; blue's switch reverts it" in " ".join(m for _, m in preview.logs)
    engine.up("blue")
    assert world.traffic() == ON_BLUE


def kill_during_steps(project: Project, world: World, stack: str) -> dict[str, str]:
    """`pulumi up` in a terminal that dies (SIGKILL, its whole process group) while the rules are weighted."""
    argv = [sys.executable, "-m", "tests.engine", str(project.root), world.endpoint, stack]
    process = subprocess.Popen(
        argv, cwd=PROJECT_DIR, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while "+" not in "".join(world.traffic().values()):
            assert process.poll() is None and time.monotonic() < deadline, "the update ended before its first step"
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return {route: " / ".join(where.split("+")) for route, where in world.traffic().items()}


def test_preview_shows_the_steps_and_moves_nothing(
    engine: Engine, project: Project, world: World, alarm: str, api_calls: CallRecorder
) -> None:
    deploy_green_with_steps(
        engine, project, [10, 50, 100], rollback_alarms=[alarm], step_wait_seconds=120, bake_seconds=300
    )
    project.promote("green")
    api_calls.clear()
    preview = engine.preview("green")
    assert preview.exports["summary"].endswith(
        "traffic: api and web move blue -> green in steps of 10 %, 50 %, 100 % "
        f"(120 s apart, then 300 s bake; rollback alarms: {alarm})"
    )
    assert api_calls.writes() == []
    assert world.traffic() == ON_BLUE


def test_a_rollback_alarm_that_does_not_exist_fails_at_startup(engine: Engine, project: Project) -> None:
    project.set_shared("rollback_alarms", ["no-such-alarm"])
    with pytest.raises(
        UpdateFailed, match="bluegreen:rollback_alarms names CloudWatch alarms that do not exist: no-such-alarm"
    ):
        engine.preview("blue")


# -- test routes ---------------------------------------------------------------------------------------------


def with_test_routes(project: Project, world: World, priorities: dict[str, dict[str, int]]) -> None:
    routes = {
        route: {"rule_arn": arn, "port": 8080 + index, "deregistration_delay": 1, "test_priorities": priorities[route]}
        for index, (route, arn) in enumerate(world.rule_arns.items())
    }
    project.set_shared("routes", routes)


def test_each_color_gets_a_test_rule_per_route_behind_the_color_header(
    engine: Engine, project: Project, world: World
) -> None:
    with_test_routes(project, world, {"web": {"blue": 1, "green": 2}, "api": {"blue": 3, "green": 4}})
    engine.up("blue")
    green = engine.up("green").exports["target_group_arns"]
    rules = world.client("elbv2").describe_rules(ListenerArn=world.listener_arn)["Rules"]
    test_rule = next(rule for rule in rules if rule["Priority"] == "2")
    conditions = {condition["Field"]: condition for condition in test_rule["Conditions"]}
    assert conditions["path-pattern"]["PathPatternConfig"]["Values"] == ["/web/*"], "the route's own conditions"
    header = conditions["http-header"]["HttpHeaderConfig"]
    assert (header["HttpHeaderName"], header["Values"]) == ("X-Bluegreen-Color", ["green"])
    assert test_rule["Actions"][0]["TargetGroupArn"] == green["web"]
    assert {rule["Priority"] for rule in rules} >= {"1", "2", "3", "4"}
    assert world.traffic() == ON_BLUE, "test rules never carry production traffic"


def test_a_test_priority_taken_by_another_rule_fails_at_startup(engine: Engine, project: Project, world: World) -> None:
    world.client("elbv2").create_rule(
        ListenerArn=world.listener_arn,
        Priority=5,
        Conditions=[{"Field": "path-pattern", "Values": ["/admin/*"]}],
        Actions=[{"Type": "forward", "TargetGroupArn": world.original_target_group}],
    )
    with_test_routes(project, world, {"web": {"blue": 1, "green": 5}, "api": {"blue": 3, "green": 4}})
    with pytest.raises(UpdateFailed, match=r"bluegreen:routes\.web\.test_priorities\.green: priority 5 is taken"):
        engine.preview("green")


def test_a_test_priority_behind_the_production_rule_fails_at_startup(
    engine: Engine, project: Project, world: World
) -> None:
    with_test_routes(project, world, {"web": {"blue": 101, "green": 102}, "api": {"blue": 3, "green": 4}})
    with pytest.raises(UpdateFailed, match=r"test_priorities.blue \(101\) must be lower than the route's production"):
        engine.preview("blue")


def test_a_smoke_check_can_reach_its_color_through_the_test_route(
    engine: Engine, project: Project, smoke_server: str
) -> None:
    check = {"url": f"{smoke_server}/colored", "body_pattern": "^green$", "via_test_route": True}
    project.set("green", "smoke_checks", [check])
    engine.up("blue")
    assert engine.up("green").exports["gate"]["verdict"] == "2 instances fit for traffic"
    project.set("green", "smoke_checks", [{**check, "via_test_route": False}])
    project.set("green", "version", "1.6.0")
    with pytest.raises(UpdateFailed, match="body does not match"):
        engine.up("green")


# -- rollbacks, retries and races (found in review) ----------------------------------------------------------


def test_a_rollback_while_the_alarm_fires_moves_everything_back_at_once(
    engine: Engine, project: Project, world: World, alarm: str, rule_moves: RuleMoves
) -> None:
    blue = engine.up("blue").exports["target_group_arns"]
    engine.up("green")
    for key, value in {"traffic_steps": [10, 50, 100], "step_wait_seconds": 1, "rollback_alarms": [alarm]}.items():
        project.set_shared(key, value)
    project.promote("green")
    engine.up("green")
    set_alarm("ALARM")  # green is bad
    project.promote("blue")
    assert "at once (a rollback)" in engine.preview("blue").exports["summary"]
    engine.up("blue")
    assert world.traffic() == ON_BLUE
    assert rule_moves.shares(world.rule_arns["web"], blue["web"])[-1:] == [100], "one move, straight back"


def test_an_automatic_rollback_of_a_resumed_promotion_puts_all_traffic_back(
    engine: Engine, project: Project, world: World, alarm: str, rule_moves: RuleMoves
) -> None:
    green = deploy_green_with_steps(engine, project, [10, 50, 100], step_wait_seconds=60, rollback_alarms=[alarm])
    project.promote("green")
    kill_during_steps(project, world, "green")
    project.set_shared("step_wait_seconds", 2)
    rule_moves.callbacks.append(lambda arn, weights: weights.get(green["web"]) == 50 and set_alarm("ALARM"))
    with pytest.raises(UpdateFailed, match="every rule is back on the target group it came from"):
        engine.up("green")
    assert world.traffic() == ON_BLUE
    assert engine.preview("blue").warnings() == []


def test_a_rollback_during_a_running_promotion_wins(engine: Engine, project: Project, world: World) -> None:
    """Green's promotion is stepping in one runner when the rollback commit deploys blue in another."""
    deploy_green_with_steps(engine, project, [10, 50, 100], step_wait_seconds=4)
    project.promote("green")
    argv = [sys.executable, "-m", "tests.engine", str(project.root), world.endpoint, "green"]
    promotion = subprocess.Popen(argv, cwd=PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while "+" not in "".join(world.traffic().values()):
        assert promotion.poll() is None, promotion.stdout.read() if promotion.stdout else ""
        time.sleep(0.2)
    project.promote("blue")
    engine.up("blue")
    output = promotion.communicate(timeout=120)[0]
    assert promotion.returncode != 0
    assert "changed while this update was moving traffic to green" in output
    assert world.traffic() == ON_BLUE


def test_autoscaling_the_new_color_during_the_steps_is_no_reason_to_roll_back(
    engine: Engine,
    project: Project,
    world: World,
    rule_moves: RuleMoves,
    target_health: dict[Any, tuple[str, str, str]],
) -> None:
    green = deploy_green_with_steps(engine, project, [20, 100], step_wait_seconds=3)
    group = world.group("green")["AutoScalingGroupName"]

    def scale_out(arn: str, weights: dict[str, int]) -> None:
        if arn == world.rule_arns["web"] and weights.get(green["web"]) == 20:
            before = {i["InstanceId"] for i in world.group("green")["Instances"]}
            world.client("autoscaling").set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=3)
            (new,) = {i["InstanceId"] for i in world.group("green")["Instances"]} - before
            target_health[new] = ("initial", "Elb.RegistrationInProgress", "warming up")

    rule_moves.callbacks.append(scale_out)
    project.promote("green")
    engine.up("green")
    assert world.traffic() == ON_GREEN


def test_an_automatically_rolled_back_release_is_not_promoted_again_unasked(
    engine: Engine, project: Project, world: World, alarm: str, rule_moves: RuleMoves
) -> None:
    green = deploy_green_with_steps(engine, project, [50, 100], rollback_alarms=[alarm])
    rule_moves.callbacks.append(lambda arn, weights: weights.get(green["web"]) == 50 and set_alarm("ALARM"))
    project.promote("green")
    with pytest.raises(UpdateFailed, match="rolled back"):
        engine.up("green")
    rule_moves.callbacks.clear()
    set_alarm("OK")
    with pytest.raises(UpdateFailed, match=r"green 1\.5\.0 was rolled back automatically at (\S+);") as refused:
        engine.up("green")  # the scheduled deployment, 15 minutes later
    assert world.traffic() == ON_BLUE
    when = str(refused.value).split("rolled back automatically at ")[1].split(";")[0]
    project.set("green", "rollback_acknowledged", when)
    engine.up("green")
    assert world.traffic() == ON_GREEN
