"""TrafficSwitch against moto: all rules move or none (P2), and only on a change of intent (P7)."""

from typing import Any

import pytest

from components.live_routes import COLOR_TAG, SWITCHED_AT_TAG, VERSION_TAG
from components.traffic_switch import SwitchFailed, TrafficSwitchProvider
from tests.aws_world import ColorEnvironment, World
from tests.call_recorder import CallRecorder


def switch_props(world: World, environment: ColorEnvironment, **overrides: Any) -> dict[str, Any]:
    return {
        **world.props(),
        "rule_arns": dict(world.rule_arns),
        "target_group_arns": dict(environment.target_group_arns),
        "color": environment.color,
        "version": environment.version,
        "gate_passed_at": "2026-11-26T00:00:00+00:00",
        **overrides,
    }


def on(environment: ColorEnvironment) -> dict[str, tuple[str, ...]]:
    return {route: (arn,) for route, arn in environment.target_group_arns.items()}


def test_switch_moves_every_rule_and_tags_it(
    world: World, blue_serves: tuple[ColorEnvironment, ColorEnvironment]
) -> None:
    _, green = blue_serves
    TrafficSwitchProvider().create(switch_props(world, green))
    assert world.rule_targets() == on(green)
    for route in world.rule_arns:
        tags = world.rule_tags(route)
        assert tags[COLOR_TAG] == "green"
        assert tags[VERSION_TAG] == "1.1.0"
        assert tags[SWITCHED_AT_TAG]


def test_failure_on_the_second_rule_restores_the_first(
    world: World, blue_serves: tuple[ColorEnvironment, ColorEnvironment]
) -> None:
    blue, green = blue_serves
    missing = green.target_group_arns["api"].replace("app-green-api", "app-green-gone")
    broken = {**green.target_group_arns, "api": missing}
    with pytest.raises(SwitchFailed) as failed:
        TrafficSwitchProvider().create(switch_props(world, green, target_group_arns=broken))
    assert world.rule_targets() == on(blue)
    assert "api" in str(failed.value)
    assert world.rule_arns["api"] in str(failed.value)
    assert "restored" in str(failed.value)
    assert COLOR_TAG not in world.rule_tags("web")


def test_switch_refuses_without_a_passed_gate(
    world: World, blue_serves: tuple[ColorEnvironment, ColorEnvironment]
) -> None:
    blue, green = blue_serves
    with pytest.raises(SwitchFailed, match="health gate"):
        TrafficSwitchProvider().create(switch_props(world, green, gate_passed_at=""))
    assert world.rule_targets() == on(blue)


def test_refresh_then_up_does_not_move_traffic(
    world: World, blue_serves: tuple[ColorEnvironment, ColorEnvironment]
) -> None:
    blue, green = blue_serves
    provider = TrafficSwitchProvider()
    state = provider.create(switch_props(world, green)).outs
    world.point_rules_at(blue)  # someone moved traffic by hand
    refreshed = provider.read("switch", state).outs
    assert refreshed["observed_target_group_arns"] == {route: list(arns) for route, arns in on(blue).items()}
    assert refreshed["target_group_arns"] == green.target_group_arns
    assert provider.diff("switch", refreshed, switch_props(world, green)).changes is False
    assert world.rule_targets() == on(blue)


def test_a_change_of_intent_is_a_change(world: World, blue_serves: tuple[ColorEnvironment, ColorEnvironment]) -> None:
    blue, green = blue_serves
    provider = TrafficSwitchProvider()
    state = provider.create(switch_props(world, green)).outs
    assert provider.diff("switch", state, switch_props(world, green, version="1.2.0")).changes is True
    assert provider.diff("switch", state, switch_props(world, blue)).changes is True


def test_delete_moves_nothing(
    world: World, blue_serves: tuple[ColorEnvironment, ColorEnvironment], api_calls: CallRecorder
) -> None:
    _, green = blue_serves
    provider = TrafficSwitchProvider()
    state = provider.create(switch_props(world, green)).outs
    api_calls.clear()
    provider.delete("switch", state)
    assert api_calls.writes() == []
    assert world.rule_targets() == on(green)


def test_check_and_diff_make_no_write(
    world: World, blue_serves: tuple[ColorEnvironment, ColorEnvironment], api_calls: CallRecorder
) -> None:
    blue, green = blue_serves
    provider = TrafficSwitchProvider()
    props = switch_props(world, green)
    provider.check({}, props)
    provider.diff("switch", switch_props(world, blue), props)
    assert api_calls.writes() == []
    assert world.rule_targets() == on(blue)
