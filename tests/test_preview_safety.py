"""P5 and P6. A preview changes nothing: the engine calls only check and diff of each provider
in a preview, and none of them may write to AWS (reads are allowed: the guard reads the rules).
An unchanged config is no change: diff says so, and nothing is written."""

from collections.abc import Callable
from typing import Any

import pytest

from components.baked_image import BakedImageProvider
from components.health_gate import HealthGateProvider
from components.protection import DestroyGuardProvider, LiveColorGuardProvider
from components.traffic_switch import TrafficSwitchProvider
from tests.aws_world import World
from tests.call_recorder import CallRecorder
from tests.test_baked_image import image_props
from tests.test_health_gate import gate_props
from tests.test_protection import destroy_props, guard_props
from tests.test_traffic_switch import switch_props

Props = Callable[[World], tuple[Any, dict[str, Any], dict[str, Any]]]


def _image(world: World) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    olds = {**image_props(world), "ami_id": "ami-0123456789abcdef0"}
    return BakedImageProvider(), olds, image_props(world, version="2.0.0")


def _gate(world: World) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    green = world.build_color("green")
    return HealthGateProvider(), gate_props(world, green), gate_props(world, green, trigger={"version": "2"})


def _switch(world: World) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    blue, green = world.build_color("blue"), world.build_color("green")
    world.point_rules_at(blue)
    return TrafficSwitchProvider(), switch_props(world, blue), switch_props(world, green)


def _guard(world: World) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    world.point_rules_at(world.build_color("blue"))
    olds = LiveColorGuardProvider().create(guard_props(world, "blue", "green")).outs
    return LiveColorGuardProvider(), olds, guard_props(world, "blue", "green", idle_capacity=1.0)


def _destroy_guard(world: World) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    blue = world.build_color("blue")
    return DestroyGuardProvider(), destroy_props(world, blue), {**destroy_props(world, blue), "color": "green"}


@pytest.mark.parametrize("case", [_image, _gate, _switch, _guard, _destroy_guard], ids=lambda case: case.__name__[1:])
def test_check_and_diff_make_no_aws_write(world: World, api_calls: CallRecorder, case: Props) -> None:
    world.build_load_balancer()
    provider, olds, news = case(world)
    api_calls.clear()
    provider.check(olds, news)
    assert provider.diff("id", olds, news).changes is True
    assert api_calls.writes() == []


@pytest.mark.parametrize("case", [_gate, _switch, _guard, _destroy_guard], ids=lambda case: case.__name__[1:])
def test_unchanged_inputs_are_no_change(world: World, api_calls: CallRecorder, case: Props) -> None:
    """P6: after an update, the same config again makes no change and no write."""
    world.build_load_balancer()
    provider, _, news = case(world)
    state = provider.create(news).outs
    api_calls.clear()
    provider.check(state, news)
    assert provider.diff("id", state, news).changes is False
    assert api_calls.writes() == []
