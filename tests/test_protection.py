"""Live-color protection against moto (P3): decided by what the rules point at, not by config."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from components.live_routes import SWITCHED_AT_TAG
from components.protection import DestroyGuardProvider, LiveColorChange, LiveColorGuardProvider
from components.traffic_switch import TrafficSwitchProvider
from tests.aws_world import APP, ColorEnvironment, World
from tests.call_recorder import CallRecorder
from tests.test_traffic_switch import switch_props


def guard_props(world: World, color: str, active: str, **overrides: Any) -> dict[str, Any]:
    return {
        **world.props(),
        "app_name": APP,
        "color": color,
        "active_color": active,
        "rule_arns": dict(world.rule_arns),
        "release": {"version": "1.0.0", "image": "ami-0123456789abcdef0"},
        "capacity": {"min_size": 2.0, "max_size": 4.0, "desired": 2.0},
        "idle_capacity": 0.0,
        "drain_seconds": 60.0,
        **overrides,
    }


def destroy_props(world: World, environment: ColorEnvironment) -> dict[str, Any]:
    return {
        **world.props(),
        "app_name": APP,
        "color": environment.color,
        "rule_arns": dict(world.rule_arns),
        "asg_name": environment.asg_name,
        "target_group_arns": environment.target_group_arns,
    }


def switch_to(world: World, environment: ColorEnvironment) -> None:
    TrafficSwitchProvider().create(switch_props(world, environment))


def backdate_switch(world: World, seconds: int) -> None:
    stamp = (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat(timespec="seconds")
    world.client("elbv2").add_tags(
        ResourceArns=list(world.rule_arns.values()), Tags=[{"Key": SWITCHED_AT_TAG, "Value": stamp}]
    )


def capacity_of(outs: dict[str, Any]) -> tuple[int, int, int]:
    return int(outs["min_size"]), int(outs["desired_capacity"]), int(outs["max_size"])


def test_version_change_of_the_serving_color_is_refused(world: World, blue_serves: Any) -> None:
    provider = LiveColorGuardProvider()
    state = provider.create(guard_props(world, "blue", "blue")).outs
    new_release = guard_props(world, "blue", "blue", release={"version": "1.1.0", "image": "ami-0123456789abcdef0"})
    with pytest.raises(LiveColorChange, match="blue still serves api and web; deploy to green and promote it instead"):
        provider.diff("guard", state, new_release)
    with pytest.raises(LiveColorChange):
        provider.update("guard", state, new_release)


def test_truth_is_the_rules_not_config(world: World, blue_serves: Any) -> None:
    """Config already says green is live, but the rules still point at blue: blue is protected."""
    provider = LiveColorGuardProvider()
    state = provider.create(guard_props(world, "blue", "green")).outs
    with pytest.raises(LiveColorChange, match="blue still serves"):
        provider.update("guard", state, guard_props(world, "blue", "green", release={"version": "9.9.9"}))


def test_version_change_of_the_idle_color_is_allowed(world: World, blue_serves: Any) -> None:
    provider = LiveColorGuardProvider()
    state = provider.create(guard_props(world, "green", "blue", idle_capacity=None)).outs
    news = guard_props(world, "green", "blue", idle_capacity=None, release={"version": "1.2.0"})
    assert provider.diff("guard", state, news).changes is True
    assert capacity_of(provider.update("guard", state, news).outs) == (2, 2, 4)


def test_lowering_the_serving_color_capacity_is_refused(world: World, blue_serves: Any) -> None:
    provider = LiveColorGuardProvider()
    state = provider.create(guard_props(world, "blue", "blue")).outs
    smaller = guard_props(world, "blue", "blue", capacity={"min_size": 1.0, "max_size": 4.0, "desired": 1.0})
    with pytest.raises(LiveColorChange, match="blue still serves"):
        provider.update("guard", state, smaller)


def test_raising_the_serving_color_capacity_is_allowed(world: World, blue_serves: Any) -> None:
    provider = LiveColorGuardProvider()
    state = provider.create(guard_props(world, "blue", "blue")).outs
    larger = guard_props(world, "blue", "blue", capacity={"min_size": 3.0, "max_size": 6.0, "desired": 4.0})
    assert capacity_of(provider.update("guard", state, larger).outs) == (3, 4, 6)


def test_idle_color_that_still_serves_keeps_full_capacity_and_says_so(world: World, blue_serves: Any) -> None:
    outs = LiveColorGuardProvider().create(guard_props(world, "blue", "green")).outs
    assert capacity_of(outs) == (2, 2, 4)
    assert "still serves api and web" in outs["capacity_note"]


def test_idle_color_scales_down_after_the_switch_and_the_drain_delay(
    world: World, blue_serves: tuple[ColorEnvironment, ColorEnvironment]
) -> None:
    _, green = blue_serves
    provider = LiveColorGuardProvider()
    state = provider.create(guard_props(world, "blue", "green")).outs
    props = guard_props(world, "blue", "green")

    switch_to(world, green)
    assert provider.diff("guard", state, props).changes is False, "must wait for the drain delay"
    draining = provider.update("guard", state, props).outs
    assert capacity_of(draining) == (2, 2, 4)
    assert "draining" in draining["capacity_note"]

    backdate_switch(world, 61)
    assert provider.diff("guard", state, props).changes is True
    assert capacity_of(provider.update("guard", state, props).outs) == (0, 0, 4)


def test_live_color_not_yet_serving_gets_full_capacity(world: World, blue_serves: Any) -> None:
    outs = LiveColorGuardProvider().create(guard_props(world, "green", "green")).outs
    assert capacity_of(outs) == (2, 2, 4)


def test_unchanged_converged_guard_has_no_diff(world: World, blue_serves: Any, api_calls: CallRecorder) -> None:
    provider = LiveColorGuardProvider()
    state = provider.create(guard_props(world, "green", "blue")).outs
    api_calls.clear()
    provider.check(state, guard_props(world, "green", "blue"))
    assert provider.diff("guard", state, guard_props(world, "green", "blue")).changes is False
    assert api_calls.writes() == []


def test_destroy_of_the_serving_color_is_refused(
    world: World, blue_serves: tuple[ColorEnvironment, ColorEnvironment]
) -> None:
    blue, _ = blue_serves
    provider = DestroyGuardProvider()
    state = provider.create(destroy_props(world, blue)).outs
    with pytest.raises(LiveColorChange, match="blue still serves api and web"):
        provider.delete("destroy-guard", state)


def test_destroy_of_an_idle_color_is_allowed(
    world: World, blue_serves: tuple[ColorEnvironment, ColorEnvironment], api_calls: CallRecorder
) -> None:
    _, green = blue_serves
    provider = DestroyGuardProvider()
    state = provider.create(destroy_props(world, green)).outs
    provider.delete("destroy-guard", state)
    assert api_calls.writes() == []
