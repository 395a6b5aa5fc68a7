"""A whole release on moto, each provider called in the order the engine would call it.

blue live -> deploy green -> gate -> switch -> blue idle scales down -> rollback to blue.
What Pulumi's AWS provider would do between the calls (apply a capacity to the group)
is done here with boto3.
"""

from typing import Any

from components.health_gate import HealthGateProvider
from components.protection import LiveColorGuardProvider
from components.traffic_switch import TrafficSwitchProvider
from tests.aws_world import ColorEnvironment, World
from tests.test_health_gate import gate_props
from tests.test_protection import backdate_switch, guard_props
from tests.test_traffic_switch import on, switch_props


class ColorStack:
    """The providers' state of one color's stack, carried from one `pulumi up` to the next."""

    def __init__(self, world: World, environment: ColorEnvironment) -> None:
        self.world, self.environment = world, environment
        self.guard: dict[str, Any] | None = None
        self.gate: dict[str, Any] | None = None
        self.switch: dict[str, Any] | None = None

    def up(self, active: str) -> None:
        env, world = self.environment, self.world
        guard_in = guard_props(world, env.color, active, release={"version": env.version})
        guard = LiveColorGuardProvider()
        if self.guard is None:
            self.guard = guard.create(guard_in).outs
        elif guard.diff("guard", self.guard, guard_in).changes:
            self.guard = guard.update("guard", self.guard, guard_in).outs
        desired = int(self.guard["desired_capacity"])
        world.client("autoscaling").update_auto_scaling_group(
            AutoScalingGroupName=env.asg_name, MinSize=int(self.guard["min_size"]), DesiredCapacity=desired
        )
        gate_in = gate_props(world, env, expected_count=float(desired), trigger={"live": env.color == active})
        gate = HealthGateProvider()
        if self.gate is None:
            self.gate = gate.create(gate_in).outs
        elif gate.diff("gate", self.gate, gate_in).changes:
            self.gate = gate.update("gate", self.gate, gate_in).outs
        switch = TrafficSwitchProvider()
        if env.color != active:
            if self.switch is not None:
                switch.delete("switch", self.switch)
                self.switch = None
            return
        switch_in = switch_props(world, env, gate_passed_at=self.gate["passed_at"])
        if self.switch is None:
            self.switch = switch.create(switch_in).outs
        elif switch.diff("switch", self.switch, switch_in).changes:
            self.switch = switch.update("switch", self.switch, switch_in).outs


def test_release_promotion_scale_down_and_rollback(world: World) -> None:
    world.build_load_balancer()
    blue = ColorStack(world, world.build_color("blue", version="1.0.0"))
    green = ColorStack(world, world.build_color("green", version="1.1.0"))
    blue.up(active="blue")
    assert world.rule_targets() == on(blue.environment)

    green.up(active="blue")  # deploy and verify green; traffic stays on blue
    assert world.rule_targets() == on(blue.environment)

    green.up(active="green")  # promote: gate, then switch
    assert world.rule_targets() == on(green.environment)

    blue.up(active="green")  # blue is idle now, but still within the drain delay
    assert world.capacity(blue.environment) == 2
    backdate_switch(world, 61)
    blue.up(active="green")
    assert world.capacity(blue.environment) == 0
    assert world.rule_targets() == on(green.environment)

    ami_before = blue.environment.ami_id
    blue.up(active="blue")  # rollback: blue scales back, passes its gate, takes the traffic
    assert world.capacity(blue.environment) == 2
    assert world.rule_targets() == on(blue.environment)
    assert blue.gate is not None and len(blue.gate["instance_ids"]) == 2
    assert blue.environment.ami_id == ami_before
