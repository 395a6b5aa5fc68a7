"""scripts/status: the real script, run as a user runs it, against the moto world (tests/aws_world.py)."""

import json
import subprocess
import sys
from typing import Any

from tests.aws_world import APP, ColorEnvironment, World
from tests.call_recorder import CallRecorder
from tests.project import Project
from tests.stack_config import PROJECT_DIR


def status(project: Project, *flags: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "scripts.status", "--project-dir", str(project.root), *flags]
    return subprocess.run(argv, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60)


def status_json(project: Project) -> dict[str, Any]:
    run = status(project, "--json")
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def tagged(world: World, environment: ColorEnvironment) -> ColorEnvironment:
    """The tags BlueGreenEnvironment puts on a color's group, which the world's groups lack."""
    tags = {"app": APP, "color": environment.color, "version": environment.version, "managed-by": "bluegreen"}
    world.client("autoscaling").create_or_update_tags(
        Tags=[
            {
                "ResourceId": environment.asg_name,
                "ResourceType": "auto-scaling-group",
                "Key": key,
                "Value": value,
                "PropagateAtLaunch": True,
            }
            for key, value in tags.items()
        ]
    )
    return environment


def two_colors(world: World) -> tuple[ColorEnvironment, ColorEnvironment]:
    blue = tagged(world, world.build_color("blue", version="1.4.0"))
    green = tagged(world, world.build_color("green", version="1.5.0", instances=1))
    world.point_rules_at(blue)
    return blue, green


def test_json_shows_each_rule_on_blue_and_both_colors(project: Project, world: World) -> None:
    blue, _ = two_colors(world)
    found = status_json(project)
    assert found["routes"]["web"] == {
        "rule_arn": world.rule_arns["web"],
        "forwards_to": "blue",
        "target_groups": ["app-blue-web"],
    }
    assert found["routes"]["api"]["forwards_to"] == "blue"
    blue_status, green_status = found["colors"]["blue"], found["colors"]["green"]
    assert blue_status["serves"] == ["api", "web"]
    assert green_status["serves"] == []
    [group] = blue_status["groups"]
    assert group["name"] == blue.asg_name
    assert (group["version"], group["amis"]) == ("1.4.0", [blue.ami_id])
    assert (group["min_size"], group["desired"], group["max_size"]) == (2, 2, 4)
    assert (group["instances"], group["in_service"], group["healthy"]) == (2, 2, {"web": 2, "api": 2})
    [group] = green_status["groups"]
    assert (group["version"], group["desired"], group["healthy"]) == ("1.5.0", 1, {"web": 1, "api": 1})


def test_table_puts_the_colors_side_by_side(project: Project, world: World) -> None:
    blue, green = two_colors(world)
    run = status(project)
    assert run.returncode == 0, run.stderr
    lines = {line.split("  ")[0]: line for line in run.stdout.splitlines() if line}
    assert lines["web"].split()[:3] == ["web", "blue", "app-blue-web"]
    assert lines["route"].split()[:4] == ["route", "forwards", "to", "target"]
    assert lines["version"].split() == ["version", "1.4.0", "1.5.0"]
    assert lines["capacity"].split()[:3] == ["capacity", "2/2/4", "(min/desired/max)"]
    assert "1/1/2" in lines["capacity"]
    assert lines["InService"].split() == ["InService", "2/2", "1/1"]
    assert lines["healthy in web"].split()[3:] == ["2/2", "1/1"]
    assert lines["group"].split() == ["group", blue.asg_name, green.asg_name]
    assert lines["serves"].split() == ["serves", "api,", "web", "-"]


def test_a_rule_moved_by_hand_shows_where_it_points(project: Project, world: World) -> None:
    two_colors(world)
    world.move_by_hand("web", "green")
    found = status_json(project)
    assert {route: found["routes"][route]["forwards_to"] for route in ("web", "api")} == {"web": "green", "api": "blue"}
    assert (found["colors"]["blue"]["serves"], found["colors"]["green"]["serves"]) == (["api"], ["web"])


def test_a_rule_outside_bluegreen_and_a_color_without_a_group(project: Project, world: World) -> None:
    """Before the first release: the rules forward to the platform team's group and no color has a group."""
    found = status_json(project)
    assert {route["forwards_to"] for route in found["routes"].values()} == {"outside bluegreen"}
    assert found["colors"] == {"blue": {"serves": [], "groups": []}, "green": {"serves": [], "groups": []}}
    run = status(project)
    assert [line.split() for line in run.stdout.splitlines() if line.startswith("version")] == [["version", "-", "-"]]


def test_an_idle_color_at_zero_shows_the_ami_its_template_launches(project: Project, world: World) -> None:
    green = tagged(world, world.build_color("green", version="1.5.0", instances=0))
    [group] = status_json(project)["colors"]["green"]["groups"]
    assert (group["instances"], group["amis"], group["desired"]) == (0, [green.ami_id], 0)


def test_status_only_reads(project: Project, world: World, api_calls: CallRecorder) -> None:
    two_colors(world)
    api_calls.clear()
    status_json(project)
    assert api_calls.operations()
    assert api_calls.writes() == []


def test_a_rule_that_does_not_exist_is_one_line_naming_its_route(project: Project, world: World) -> None:
    missing = world.rule_arns["web"][:-4] + "0000"
    run = status(project, "--rule", f"web={missing}", "--rule", f"api={world.rule_arns['api']}")
    assert run.returncode == 2
    assert run.stderr.strip() == f"status: bluegreen:routes.web.rule_arn names no existing listener rule: {missing}"


def test_unhealthy_targets_are_not_counted_healthy(
    project: Project, world: World, target_health: dict[str, tuple[str, str, str]]
) -> None:
    blue, _ = two_colors(world)
    target_health[world.instance_ids(blue)[0]] = ("unhealthy", "Target.FailedHealthChecks", "502")
    [group] = status_json(project)["colors"]["blue"]["groups"]
    assert (group["in_service"], group["healthy"]) == (2, {"web": 1, "api": 1})


def test_a_weighted_rule_shows_each_colors_share_and_both_serve(project: Project, world: World) -> None:
    blue, green = two_colors(world)
    groups = [
        {"TargetGroupArn": blue.target_group_arns["web"], "Weight": 90},
        {"TargetGroupArn": green.target_group_arns["web"], "Weight": 10},
    ]
    actions = [{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}]
    elbv2 = world.client("elbv2")
    elbv2.modify_rule(RuleArn=world.rule_arns["web"], Actions=actions)
    elbv2.add_tags(ResourceArns=[world.rule_arns["web"]], Tags=[{"Key": "bluegreen:moving-to", "Value": "green"}])
    found = status_json(project)
    assert found["routes"]["web"]["forwards_to"] == "blue 90 % + green 10 % + (moving to green)"
    assert (found["colors"]["blue"]["serves"], found["colors"]["green"]["serves"]) == (["api", "web"], ["web"])
