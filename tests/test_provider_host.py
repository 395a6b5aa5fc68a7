"""Every dynamic provider survives the SDK's serializer and runs in the real provider host."""

import base64

import dill
import grpc
import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime.proto import provider_pb2

from components.baked_image import BakedImageProvider
from components.destroy_guard import DestroyGuardProvider
from components.health_gate import HealthGateProvider
from components.traffic_switch import TrafficSwitchProvider
from tests.aws_world import ColorEnvironment, World
from tests.provider_host import provider_host
from tests.test_baked_image import image_props
from tests.test_destroy_guard import destroy_props
from tests.test_health_gate import gate_props
from tests.test_traffic_switch import on, switch_props

PROVIDERS = [BakedImageProvider, HealthGateProvider, TrafficSwitchProvider, DestroyGuardProvider]


@pytest.mark.parametrize("provider_class", PROVIDERS)
def test_provider_round_trips_through_the_sdk_serializer(provider_class: type) -> None:
    serialized = serialize_provider(provider_class())
    assert isinstance(dill.loads(base64.b64decode(serialized)), provider_class)
    assert serialize_provider(provider_class()) == serialized, "a changing pickle would show a diff on every up"


def test_gate_and_switch_run_in_the_real_host(
    world: World, blue_serves: tuple[ColorEnvironment, ColorEnvironment]
) -> None:
    _, green = blue_serves
    with provider_host() as host:
        _, gate = host.create("urn:gate", host.with_provider(HealthGateProvider(), gate_props(world, green)))
        assert gate["passed_at"]
        switch_in = host.with_provider(TrafficSwitchProvider(), switch_props(world, green))
        switch_id, switch = host.create("urn:switch", switch_in)
        assert world.rule_targets() == on(green)
        settled = host.with_provider(TrafficSwitchProvider(), switch_props(world, green, moves={}))
        assert host.diff("urn:switch", switch_id, switch, settled).changes == provider_pb2.DiffResponse.DIFF_NONE
        progress = "\n".join(host.stderr())
    # The engine shows each stderr line of a provider to the user: that is how progress reaches them.
    assert "web: 2/2 healthy" in progress
    assert "verifying green right before moving api, web" in progress


def test_refusal_reaches_the_engine_as_an_error(world: World, blue_serves: object) -> None:
    with provider_host() as host:
        id_, state = host.create(
            "urn:destroy-guard", host.with_provider(DestroyGuardProvider(), destroy_props(world, "blue"))
        )
        with pytest.raises(grpc.RpcError) as refused:
            host.delete("urn:destroy-guard", id_, state)
    assert "blue still serves api, web" in refused.value.details()


def test_baked_image_builds_with_packer_in_the_real_host(world: World) -> None:
    props = image_props(world, template_dir="image")  # relative, as the program passes it
    with provider_host() as host:
        ami_id, outs = host.create("urn:image", host.with_provider(BakedImageProvider(), props))
        assert ami_id == outs["ami_id"] and ami_id.startswith("ami-")
        assert host.read("urn:image", ami_id, outs)[1]["ami_id"] == ami_id
        host.delete("urn:image", ami_id, outs)
        progress = "\n".join(host.stderr())
    assert "amazon-ebs.emulator" in progress
    images = world.client("ec2").describe_images(ImageIds=[ami_id])["Images"]
    assert images == [] or images[0]["State"] == "deregistered"
