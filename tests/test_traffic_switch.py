"""TrafficSwitch against moto: a fresh verdict before any move (P1), all rules or none (P2), intent only (P7)."""

from typing import Any

import pytest

from components.health_gate import GateFailed
from components.live_state import COLOR_TAG, SWITCHED_AT_TAG, VERSION_TAG
from components.traffic_switch import SwitchFailed, TrafficSwitchProvider
from tests.aws_world import APP, ColorEnvironment, World
from tests.call_recorder import CallRecorder
from tests.test_health_gate import gate_props


def switch_props(world: World, environment: ColorEnvironment, **overrides: Any) -> dict[str, Any]:
    """TrafficSwitch props as the engine sends them, for a promotion of `environment`'s color."""
    return {
        **world.props(),
        "app_name": APP,
        "color": environment.color,
        "version": environment.version,
        "rule_arns": dict(world.rule_arns),
        "target_group_arns": dict(environment.target_group_arns),
        "fitness": gate_props(world, environment)["fitness"],
        "moves": dict.fromkeys(world.rule_arns, "blue"),
        "drift": {},
        "rollout": {"steps": [100.0], "step_wait_seconds": 0.0, "bake_seconds": 0.0, "alarms": []},
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
        assert (tags[COLOR_TAG], tags[VERSION_TAG]) == ("green", "1.1.0")
        assert tags[SWITCHED_AT_TAG]


def test_switch_takes_its_own_verdict_and_moves_nothing_onto_an_unfit_color(
    world: World,
    blue_serves: tuple[ColorEnvironment, ColorEnvironment],
    target_health: dict[str, tuple[str, str, str]],
) -> None:
    blue, green = blue_serves
    target_health[world.instance_ids(green)[0]] = ("unhealthy", "Target.FailedHealthChecks", "502")
    with pytest.raises(GateFailed, match="traffic was not moved"):
        TrafficSwitchProvider().create(switch_props(world, green))
    assert world.rule_targets() == on(blue)
    assert COLOR_TAG not in world.rule_tags("web")


def test_failure_on_the_second_rule_restores_the_first_and_says_so(
    world: World, blue_serves: tuple[ColorEnvironment, ColorEnvironment], failing_rules: set[str]
) -> None:
    blue, green = blue_serves
    failing_rules.add(world.rule_arns["web"])
    with pytest.raises(SwitchFailed) as failed:
        TrafficSwitchProvider().create(switch_props(world, green))
    assert world.rule_targets() == on(blue)
    message = str(failed.value)
    assert f"switching route 'web' (rule {world.rule_arns['web']}) to green failed" in message
    assert "traffic restored: api back where they were; web never moved" in message
    assert COLOR_TAG not in world.rule_tags("api")


def test_a_rule_that_cannot_be_restored_is_named(
    world: World, blue_serves: tuple[ColorEnvironment, ColorEnvironment], monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.elbv2 import models
    from moto.elbv2.exceptions import ELBClientError

    _, green = blue_serves
    web, moved = world.rule_arns["web"], []
    real_modify_rule = models.ELBv2Backend.modify_rule

    def modify_rule(self: Any, rule_arn: str, *args: Any, **kwargs: Any) -> Any:
        """web refuses any change; api moves once, then refuses to move back."""
        if rule_arn == web or rule_arn in moved:
            raise ELBClientError("OperationNotPermitted", f"{rule_arn} is locked")
        moved.append(rule_arn)
        return real_modify_rule(self, rule_arn, *args, **kwargs)

    monkeypatch.setattr(models.ELBv2Backend, "modify_rule", modify_rule)
    with pytest.raises(SwitchFailed, match="RESTORE FAILED for api: they still send traffic to green"):
        TrafficSwitchProvider().create(switch_props(world, green))
    assert world.rule_targets()["api"] == on(green)["api"]


def test_switch_refuses_while_rules_were_moved_by_hand(
    world: World, blue_serves: tuple[ColorEnvironment, ColorEnvironment]
) -> None:
    blue, green = blue_serves
    drift = {"web": "web: forwards to blue by hand"}
    with pytest.raises(SwitchFailed, match="did not make green live"):
        TrafficSwitchProvider().create(switch_props(world, green, drift=drift))
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
    unchanged = switch_props(world, green, moves={}, drift={"web": "by hand", "api": "by hand"})
    assert provider.diff("switch", refreshed, unchanged).changes is False
    assert world.rule_targets() == on(blue)


def test_a_change_of_intent_or_a_move_is_a_change(
    world: World, blue_serves: tuple[ColorEnvironment, ColorEnvironment]
) -> None:
    _, green = blue_serves
    provider = TrafficSwitchProvider()
    state = provider.create(switch_props(world, green)).outs
    assert provider.diff("switch", state, switch_props(world, green, moves={})).changes is False
    assert provider.diff("switch", state, switch_props(world, green, moves={}, version="1.2.0")).changes is True
    assert provider.diff("switch", state, switch_props(world, green, moves={"web": "blue"})).changes is True


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
