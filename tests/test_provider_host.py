"""Every dynamic provider survives the SDK's serializer and runs in the real provider host."""

import base64

import dill
import grpc
import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime.proto import provider_pb2

from components.baked_image import BakedImageProvider
from components.health_gate import HealthGateProvider
from components.protection import DestroyGuardProvider, LiveColorGuardProvider
from components.traffic_switch import TrafficSwitchProvider
from tests.aws_world import World
from tests.provider_host import provider_host
from tests.test_baked_image import image_props
from tests.test_health_gate import gate_props
from tests.test_protection import destroy_props, guard_props
from tests.test_traffic_switch import on, switch_props

PROVIDERS = [
    BakedImageProvider,
    HealthGateProvider,
    TrafficSwitchProvider,
    LiveColorGuardProvider,
    DestroyGuardProvider,
]


@pytest.mark.parametrize("provider_class", PROVIDERS)
def test_provider_round_trips_through_the_sdk_serializer(provider_class: type) -> None:
    serialized = serialize_provider(provider_class())
    assert isinstance(dill.loads(base64.b64decode(serialized)), provider_class)
    assert serialize_provider(provider_class()) == serialized, "a changing pickle would show a diff on every up"


def test_gate_guard_and_switch_run_in_the_real_host(world: World) -> None:
    world.build_load_balancer()
    blue, green = world.build_color("blue"), world.build_color("green", version="1.1.0")
    world.point_rules_at(blue)
    with provider_host() as host:
        _, guard = host.create(
            "urn:guard", host.with_provider(LiveColorGuardProvider(), guard_props(world, "green", "green"))
        )
        assert (guard["min_size"], guard["desired_capacity"], guard["max_size"]) == (2, 2, 4)
        _, gate = host.create("urn:gate", host.with_provider(HealthGateProvider(), gate_props(world, green)))
        assert gate["passed_at"]
        switch_in = host.with_provider(
            TrafficSwitchProvider(), switch_props(world, green, gate_passed_at=gate["passed_at"])
        )
        switch_id, switch = host.create("urn:switch", switch_in)
        assert world.rule_targets() == on(green)
        assert host.diff("urn:switch", switch_id, switch, switch_in).changes == provider_pb2.DiffResponse.DIFF_NONE
        process = host.process
    progress = process.stderr.read().decode() if process.stderr else ""
    # The engine shows each stderr line of a provider to the user: that is how progress reaches them.
    assert "web: 2/2 healthy" in progress
    assert "api: 2/2 healthy" in progress


def test_refusal_reaches_the_engine_as_an_error(world: World) -> None:
    world.build_load_balancer()
    blue = world.build_color("blue")
    world.point_rules_at(blue)
    with provider_host() as host:
        props = host.with_provider(DestroyGuardProvider(), destroy_props(world, blue))
        id_, state = host.create("urn:destroy-guard", props)
        with pytest.raises(grpc.RpcError) as refused:
            host.delete("urn:destroy-guard", id_, {**state, "__provider": props["__provider"]})
    assert "blue still serves api and web" in refused.value.details()


def test_baked_image_builds_with_packer_in_the_real_host(world: World) -> None:
    props = image_props(world, template_dir="image")  # relative, as the program passes it
    with provider_host() as host:
        serialized = host.with_provider(BakedImageProvider(), props)
        ami_id, outs = host.create("urn:image", serialized)
        assert ami_id == outs["ami_id"] and ami_id.startswith("ami-")
        assert host.read("urn:image", ami_id, {**outs, "__provider": serialized["__provider"]})["ami_id"] == ami_id
        host.delete("urn:image", ami_id, {**outs, "__provider": serialized["__provider"]})
        process = host.process
    assert "amazon-ebs.emulator" in (process.stderr.read().decode() if process.stderr else "")
    images = world.client("ec2").describe_images(ImageIds=[ami_id])["Images"]
    assert images == [] or images[0]["State"] == "deregistered"
