"""Automatic rollback: time from an alarm turning ALARM to every rule back on the old color, and the
API calls of one weighted step, for 2 and 20 routes.

The TrafficSwitch provider promotes green over blue in steps of 10 %, 50 %, 100 % against a moto
server on 127.0.0.1 that counts every call; the watch polls once a second. For the rollback figure
the alarm is set to ALARM while step 2 (50 %) is watched, and the rules are read until all of them
are back on blue. Run from the repository root: venv/bin/python -m bench.rollback_bench
"""

import os
import threading
import time
from collections import Counter
from typing import Any

import requests

from components.health_gate import GateFailed
from components.rollout import SwitchFailed
from components.traffic_switch import TrafficSwitchProvider
from tests.aws_world import ColorEnvironment, World
from tests.call_recorder import CallRecorder
from tests.moto_server import FAKE_CREDENTIALS, start_moto
from tests.test_traffic_switch import switch_props

ROUTE_COUNTS = (2, 20)
STEPS = [10.0, 50.0, 100.0]
ALARM = "app-5xx"


def setup(endpoint: str, routes: int) -> tuple[World, ColorEnvironment, ColorEnvironment]:
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    world = World(endpoint)
    world.build_load_balancer(routes=tuple(f"r{index}" for index in range(routes)))
    blue, green = world.build_color("blue"), world.build_color("green", version="1.1.0")
    world.point_rules_at(blue)
    world.create_alarm(ALARM)
    return world, blue, green


def props(world: World, green: ColorEnvironment, wait: float) -> dict[str, Any]:
    base = switch_props(world, green)
    rollout = {"steps": STEPS, "step_wait_seconds": wait, "bake_seconds": 0.0, "alarms": [ALARM]}
    return {**base, "rollout": rollout, "fitness": {**base["fitness"], "poll_seconds": 1.0, "timeout_seconds": 30.0}}


def calls_per_step(endpoint: str, recorder: CallRecorder, routes: int) -> Counter[str]:
    world, _, green = setup(endpoint, routes)
    recorder.clear()
    TrafficSwitchProvider().create(props(world, green, wait=0.0))
    return Counter(recorder.operations())


def rollback_time(endpoint: str, recorder: CallRecorder, routes: int) -> tuple[int, float]:
    """(alarm polls, seconds) from ALARM to every rule back on blue."""
    world, blue, green = setup(endpoint, routes)
    on_blue = {route: (arn,) for route, arn in blue.target_group_arns.items()}
    measured: dict[str, Any] = {}

    def turn_alarm_on_at_step_two() -> None:
        first = next(iter(world.rule_arns))
        while green.target_group_arns[first] not in world.rule_targets()[first] or len(world.rule_targets()[first]) < 2:
            time.sleep(0.05)
        time.sleep(1.5)  # step 1 is being watched; wait for step 2 (50 %)
        measured["polls_before"] = recorder.operations().count("DescribeAlarms")
        world.client("cloudwatch").set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="bench")
        measured["alarm_at"] = time.perf_counter()
        while world.rule_targets() != on_blue:
            time.sleep(0.01)
        measured["back_at"] = time.perf_counter()
        measured["polls_after"] = recorder.operations().count("DescribeAlarms")

    watcher = threading.Thread(target=turn_alarm_on_at_step_two)
    watcher.start()
    try:
        TrafficSwitchProvider().create(props(world, green, wait=3.0))
    except (SwitchFailed, GateFailed):
        pass
    watcher.join(timeout=60)
    return measured["polls_after"] - measured["polls_before"], measured["back_at"] - measured["alarm_at"]


def main() -> None:
    os.environ.update(FAKE_CREDENTIALS)
    recorder = CallRecorder()
    server, endpoint = start_moto(recorder)
    print(f"promotion in steps {STEPS}, alarms polled every 1 s, moto on {endpoint}")
    row = "{:>6} | {:>12} | {:>16} | {:>17} | {}"
    print(
        row.format(
            "routes",
            "alarm polls",
            "ALARM -> all back",
            "calls per step",
            "per step, by operation (a whole promotion divided by its steps)",
        )
    )
    try:
        for routes in ROUTE_COUNTS:
            polls, seconds = rollback_time(endpoint, recorder, routes)
            calls = calls_per_step(endpoint, recorder, routes)
            per_step = {operation: count / len(STEPS) for operation, count in sorted(calls.items())}
            shown = ", ".join(f"{operation} {count:.1f}" for operation, count in per_step.items())
            print(row.format(routes, polls, f"{seconds:.2f} s", f"{sum(per_step.values()):.1f}", shown))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
