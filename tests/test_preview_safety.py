"""P5 and P6 for each provider. A preview calls only check and diff: they write nothing to AWS, and they
accept unknown values, as the real dynamic-provider host hands them over in a stack's first preview.
An unchanged input is no change: diff says so, and nothing is written."""

from collections.abc import Callable
from typing import Any

import pytest
from pulumi.output import UNKNOWN
from pulumi.runtime.proto import provider_pb2

from components.baked_image import BakedImageProvider
from components.destroy_guard import DestroyGuardProvider
from components.health_gate import HealthGateProvider
from components.traffic_switch import TrafficSwitchProvider
from tests.aws_world import World
from tests.call_recorder import CallRecorder
from tests.provider_host import provider_host
from tests.test_baked_image import image_props
from tests.test_destroy_guard import destroy_props
from tests.test_health_gate import gate_props
from tests.test_traffic_switch import switch_props

Case = Callable[[World], tuple[Any, dict[str, Any], dict[str, Any]]]


def _image(world: World) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    olds = {**image_props(world), "ami_id": "ami-0123456789abcdef0"}
    return BakedImageProvider(), olds, image_props(world, version="2.0.0")


def _gate(world: World) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    green = world.build_color("green")
    return HealthGateProvider(), gate_props(world, green), gate_props(world, green, release="2.0.0")


def _switch(world: World) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    blue, green = world.build_color("blue"), world.build_color("green")
    world.point_rules_at(blue)
    return TrafficSwitchProvider(), switch_props(world, blue, moves={}), switch_props(world, green)


def _destroy_guard(world: World) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    return DestroyGuardProvider(), destroy_props(world, "blue"), destroy_props(world, "green")


CASES = [_image, _gate, _switch, _destroy_guard]
IDS = [case.__name__[1:] for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_check_and_diff_make_no_aws_write(world: World, api_calls: CallRecorder, case: Case) -> None:
    world.build_load_balancer()
    provider, olds, news = case(world)
    api_calls.clear()
    provider.check(olds, news)
    assert provider.diff("id", olds, news).changes is True
    assert api_calls.writes() == []


@pytest.mark.parametrize("case", [_gate, _switch, _destroy_guard], ids=IDS[1:])
def test_unchanged_inputs_are_no_change(world: World, api_calls: CallRecorder, case: Case) -> None:
    """P6: after an update, the same config again makes no change and no write."""
    world.build_load_balancer()
    provider, _, news = case(world)
    if isinstance(provider, TrafficSwitchProvider):
        news = {**news, "moves": {}}
    state = provider.create(news).outs
    api_calls.clear()
    provider.check(state, news)
    assert provider.diff("id", state, news).changes is False
    assert api_calls.writes() == []


LOCAL = ("region", "endpoint_url")
"""Config the program knows in every preview."""


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_check_and_diff_take_unknown_values_through_the_real_host(world: World, case: Case) -> None:
    """In a first preview, any output of a resource still to be created arrives as an unknown."""
    world.build_load_balancer()
    provider, olds, news = case(world)
    with provider_host() as host:
        state = host.with_provider(provider, olds)
        for key in [key for key in news if key not in LOCAL]:
            unknown = host.with_provider(provider, {**news, key: UNKNOWN})
            _, failures = host.check("urn:test", state, unknown)
            assert failures == [], key
            diff = host.diff("urn:test", "id", state, unknown)
            assert diff.changes in (provider_pb2.DiffResponse.DIFF_SOME, provider_pb2.DiffResponse.DIFF_NONE), key
        everything = host.with_provider(provider, {key: UNKNOWN if key not in LOCAL else v for key, v in news.items()})
        host.check("urn:test", state, everything)
        assert host.diff("urn:test", "id", state, everything).changes == provider_pb2.DiffResponse.DIFF_SOME
