"""HealthGate against moto: traffic may only follow a gate that saw every instance fit (P1, P2)."""

from typing import Any

import pytest

from components.health_gate import GateFailed, HealthGateProvider
from tests.aws_world import ColorEnvironment, World
from tests.call_recorder import CallRecorder


def gate_props(world: World, environment: ColorEnvironment, release: str = "", **fitness: Any) -> dict[str, Any]:
    """HealthGate props as the engine sends them (numbers as floats)."""
    return {
        **world.props(),
        "fitness": {
            "asg_name": environment.asg_name,
            "target_group_arns": environment.target_group_arns,
            "ami_id": environment.ami_id,
            "expected_count": 2.0,
            "timeout_seconds": 1.0,
            "poll_seconds": 0.2,
            "smoke_checks": [],
            **fitness,
        },
        "release": {"bluegreen:release:version": release or environment.version},
    }


@pytest.fixture
def green(world: World) -> ColorEnvironment:
    world.build_load_balancer()
    return world.build_color("green", instances=2)


def test_gate_passes_on_a_healthy_color(world: World, green: ColorEnvironment) -> None:
    result = HealthGateProvider().create(gate_props(world, green))
    assert result.outs["passed_at"]
    assert result.outs["instance_ids"] == world.instance_ids(green)


def test_gate_reports_progress_per_route(
    world: World, green: ColorEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    HealthGateProvider().create(gate_props(world, green))
    assert "web: 2/2 healthy; api: 2/2 healthy" in capsys.readouterr().err


def test_gate_times_out_on_one_unhealthy_instance_and_lists_it(
    world: World, green: ColorEnvironment, target_health: dict[Any, tuple[str, str, str]]
) -> None:
    sick = world.instance_ids(green)[0]
    target_health[sick] = ("unhealthy", "Target.FailedHealthChecks", "Health checks failed with these codes: [502]")
    with pytest.raises(GateFailed) as failed:
        HealthGateProvider().create(gate_props(world, green))
    message = str(failed.value)
    assert "is not fit for traffic after 1s" in message
    assert "web: 1/2 healthy" in message
    sick_line = next(line for line in message.splitlines() if sick in line)
    assert "unhealthy" in sick_line
    assert "Target.FailedHealthChecks" in sick_line
    assert "[502]" in sick_line


def test_gate_waits_while_instances_run_the_old_image(world: World, green: ColorEnvironment) -> None:
    new_image = world.amazon_linux_amis()[1]
    with pytest.raises(GateFailed) as failed:
        HealthGateProvider().create(gate_props(world, green, ami_id=new_image))
    assert f"0/2 instances run {new_image}" in str(failed.value)
    assert green.ami_id in str(failed.value)


def test_gate_waits_for_the_expected_count(world: World, green: ColorEnvironment) -> None:
    with pytest.raises(GateFailed, match="2/3 instances InService"):
        HealthGateProvider().create(gate_props(world, green, expected_count=3.0))


def test_gate_fails_on_an_initial_target(
    world: World, green: ColorEnvironment, target_health: dict[Any, tuple[str, str, str]]
) -> None:
    target_health[world.instance_ids(green)[1]] = ("initial", "Elb.RegistrationInProgress", "Target registration")
    with pytest.raises(GateFailed, match=r"Elb\.RegistrationInProgress"):
        HealthGateProvider().create(gate_props(world, green))


def test_gate_passes_once_the_target_recovers(
    world: World, green: ColorEnvironment, target_health: dict[Any, tuple[str, str, str]]
) -> None:
    import threading

    sick = world.instance_ids(green)[0]
    target_health[sick] = ("initial", "Elb.RegistrationInProgress", "Target registration is in progress")
    threading.Timer(0.5, target_health.pop, args=(sick,)).start()
    result = HealthGateProvider().create(gate_props(world, green, timeout_seconds=5.0))
    assert result.outs["passed_at"]


def calls_for_one_evaluation(world: World, instances: int, api_calls: CallRecorder) -> list[str]:
    environment = world.build_color(f"c{instances}", instances=instances)
    api_calls.clear()
    HealthGateProvider().create(gate_props(world, environment, expected_count=float(instances)))
    return api_calls.operations()


def test_api_calls_per_poll_do_not_grow_with_instances(world: World, api_calls: CallRecorder) -> None:
    world.build_load_balancer()
    few = calls_for_one_evaluation(world, 2, api_calls)
    many = calls_for_one_evaluation(world, 20, api_calls)
    assert sorted(few) == sorted(many)
    assert few.count("DescribeTargetHealth") == 2


def test_gate_makes_no_write(world: World, green: ColorEnvironment, api_calls: CallRecorder) -> None:
    HealthGateProvider().create(gate_props(world, green))
    assert api_calls.writes() == []


def test_smoke_check_failure_fails_the_gate(world: World, green: ColorEnvironment, smoke_server: str) -> None:
    checks = [{"url": f"{smoke_server}/broken", "expected_status": 200.0, "body_pattern": "", "headers": {}}]
    with pytest.raises(GateFailed, match=r"/broken.*500"):
        HealthGateProvider().create(gate_props(world, green, smoke_checks=checks))


def test_smoke_check_checks_status_body_and_host(world: World, green: ColorEnvironment, smoke_server: str) -> None:
    checks = [
        {
            "url": f"{smoke_server}/health",
            "expected_status": 200.0,
            "body_pattern": "ok",
            "headers": {"Host": "app.example"},
        }
    ]
    assert HealthGateProvider().create(gate_props(world, green, smoke_checks=checks)).outs["passed_at"]
    wrong_host = [{**checks[0], "headers": {"Host": "other.example"}}]
    with pytest.raises(GateFailed, match="body"):
        HealthGateProvider().create(gate_props(world, green, smoke_checks=wrong_host))


def test_diff_reruns_the_gate_only_when_what_it_verifies_changes(world: World, green: ColorEnvironment) -> None:
    provider = HealthGateProvider()
    olds = provider.create(gate_props(world, green)).outs
    assert provider.diff("gate", olds, gate_props(world, green)).changes is False
    assert provider.diff("gate", olds, gate_props(world, green, timeout_seconds=600.0)).changes is False
    assert provider.diff("gate", olds, gate_props(world, green, release="2.0.0")).changes is True
    assert provider.diff("gate", olds, gate_props(world, green, expected_count=4.0)).changes is True
    assert provider.diff("gate", olds, gate_props(world, green, asg_name="app-green-2")).changes is True


def test_a_verdict_on_zero_instances_is_no_pass(world: World) -> None:
    world.build_load_balancer()
    idle = world.build_color("green", instances=0)
    outs = HealthGateProvider().create(gate_props(world, idle, expected_count=0.0)).outs
    assert outs["passed_at"] == ""
    assert outs["verdict"] == "nothing verified: 0 instances"
    later = gate_props(world, idle, expected_count=2.0)
    assert HealthGateProvider().diff("gate", outs, later).changes is True, "a verdict on 0 covers no instance"


def test_gate_fails_on_a_draining_target(
    world: World, green: ColorEnvironment, target_health: dict[Any, tuple[str, str, str]]
) -> None:
    draining = world.instance_ids(green)[0]
    target_health[draining] = ("draining", "Target.DeregistrationInProgress", "Target deregistration is in progress")
    with pytest.raises(GateFailed) as failed:
        HealthGateProvider().create(gate_props(world, green))
    assert "draining Target.DeregistrationInProgress" in next(
        line for line in str(failed.value).splitlines() if draining in line
    )


def test_gate_fails_on_a_failed_status_check(world: World, green: ColorEnvironment, impaired: set[str]) -> None:
    sick = world.instance_ids(green)[1]
    impaired.add(sick)
    with pytest.raises(GateFailed) as failed:
        HealthGateProvider().create(gate_props(world, green))
    assert "status checks 1/2 ok" in str(failed.value)
    assert "system impaired, instance ok" in next(line for line in str(failed.value).splitlines() if sick in line)


def test_gate_fails_on_an_unhealthy_target_in_the_second_target_group_only(
    world: World, green: ColorEnvironment, target_health: dict[Any, tuple[str, str, str]]
) -> None:
    sick = world.instance_ids(green)[0]
    target_health[("app-green-api", sick)] = ("unhealthy", "Target.FailedHealthChecks", "api returns 503")
    with pytest.raises(GateFailed) as failed:
        HealthGateProvider().create(gate_props(world, green))
    assert "api: 1/2 healthy" in str(failed.value)
    assert "web: 2/2 healthy" in str(failed.value)


def test_gate_fails_while_the_group_marks_an_instance_unhealthy(world: World, green: ColorEnvironment) -> None:
    sick = world.instance_ids(green)[0]
    world.client("autoscaling").set_instance_health(InstanceId=sick, HealthStatus="Unhealthy")
    with pytest.raises(GateFailed, match=f"marked Unhealthy by the group: {sick}"):
        HealthGateProvider().create(gate_props(world, green))


def test_gate_fails_while_an_extra_instance_runs_another_image(world: World, green: ColorEnvironment) -> None:
    other = world.amazon_linux_amis()[1]
    extra = world.client("ec2").run_instances(ImageId=other, MinCount=1, MaxCount=1, SubnetId=world.subnet_ids[0])[
        "Instances"
    ][0]["InstanceId"]
    world.client("autoscaling").attach_instances(InstanceIds=[extra], AutoScalingGroupName=green.asg_name)
    with pytest.raises(GateFailed, match=f"2/3 instances run {green.ami_id} \\(others run {other}\\)"):
        HealthGateProvider().create(gate_props(world, green))


def test_an_http_level_error_fails_the_check_instead_of_the_gate(
    world: World, green: ColorEnvironment, smoke_server: str
) -> None:
    checks = [{"url": f"{smoke_server}/garbage", "expected_status": 200.0, "body_pattern": "", "headers": {}}]
    with pytest.raises(GateFailed, match=r"smoke check http://127\.0\.0\.1:\d+/garbage: BadStatusLine"):
        HealthGateProvider().create(gate_props(world, green, smoke_checks=checks))


def test_credentials_in_a_smoke_url_authenticate_and_are_never_shown(
    world: World, green: ColorEnvironment, smoke_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = smoke_server.replace("http://", "http://deploy:s3cret@") + "/private?token=t0ken"
    checks = [{"url": url, "expected_status": 200.0, "body_pattern": "ok", "headers": {}}]
    assert HealthGateProvider().create(gate_props(world, green, smoke_checks=checks)).outs["passed_at"]
    wrong = [{**checks[0], "url": url.replace("s3cret", "wr0ng")}]
    with pytest.raises(GateFailed) as failed:
        HealthGateProvider().create(gate_props(world, green, smoke_checks=wrong))
    shown = capsys.readouterr().err + str(failed.value)
    assert "/private: status 401" in shown
    assert "s3cret" not in shown and "wr0ng" not in shown and "t0ken" not in shown


def test_a_redirect_is_the_checks_answer_and_is_not_followed(
    world: World, green: ColorEnvironment, smoke_server: str
) -> None:
    checks = [{"url": f"{smoke_server}/moved", "expected_status": 200.0, "body_pattern": "", "headers": {}}]
    with pytest.raises(GateFailed, match="/moved: status 302, expected 200"):
        HealthGateProvider().create(gate_props(world, green, smoke_checks=checks))
