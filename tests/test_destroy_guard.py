"""DestroyGuard against moto: a destroy never takes the color that serves traffic (P3)."""

from typing import Any

import pytest

from components.destroy_guard import DestroyGuardProvider
from components.release_plan import LiveColorChange
from tests.aws_world import APP, ColorEnvironment, World
from tests.call_recorder import CallRecorder


def destroy_props(world: World, color: str) -> dict[str, Any]:
    return {**world.props(), "app_name": APP, "color": color, "rule_arns": dict(world.rule_arns)}


def test_destroy_of_the_serving_color_is_refused(world: World, blue_serves: Any) -> None:
    provider = DestroyGuardProvider()
    state = provider.create(destroy_props(world, "blue")).outs
    with pytest.raises(LiveColorChange, match=r"blue still serves api, web; refusing to destroy it\. Promote green"):
        provider.delete("destroy-guard", state)


def test_destroy_of_a_color_serving_one_route_is_refused(
    world: World, blue_serves: tuple[ColorEnvironment, ColorEnvironment]
) -> None:
    world.move_by_hand("web", "green")
    state = DestroyGuardProvider().create(destroy_props(world, "green")).outs
    with pytest.raises(LiveColorChange, match="green still serves web"):
        DestroyGuardProvider().delete("destroy-guard", state)


def test_destroy_of_an_idle_color_is_allowed_and_writes_nothing(
    world: World, blue_serves: Any, api_calls: CallRecorder
) -> None:
    provider = DestroyGuardProvider()
    state = provider.create(destroy_props(world, "green")).outs
    api_calls.clear()
    provider.delete("destroy-guard", state)
    assert api_calls.writes() == []
