"""Cost of one health-gate evaluation: bluegreen's fitness check next to the original flow.

The original script ran one `aws ec2 describe-instance-status --instance-id X` process per
instance on every poll. The fitness check makes one call per target group plus a fixed number of
batched calls. Both run here against the same moto server on 127.0.0.1, side by side, for 2, 20
and 100 instances. Run from the repository root: venv/bin/python -m bench.gate_bench
"""

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from components.aws import AwsTarget
from components.health_gate import FitnessCheck, GateClients, judge, observe
from tests.aws_world import REGION, World
from tests.call_recorder import CallRecorder
from tests.moto_server import FAKE_CREDENTIALS, start_moto

SIZES = (2, 20, 100)
REPEATS = 3


def gate_evaluation(target: AwsTarget, check: FitnessCheck, recorder: CallRecorder) -> tuple[int, float]:
    clients = GateClients.for_target(target)
    timings, calls = [], []
    for _ in range(REPEATS):
        recorder.clear()
        started = time.perf_counter()
        verdict = judge(observe(check, clients), check)
        timings.append(time.perf_counter() - started)
        calls.append(len(recorder.operations()))
        assert verdict.fit, verdict.progress
    return max(calls), statistics.median(timings)


def original_poll(instance_ids: list[str], endpoint: str) -> tuple[int, float]:
    """One `aws` CLI process per instance, as the reference script's check_ec2_status did."""
    aws = str(Path(sys.executable).with_name("aws"))
    started = time.perf_counter()
    for instance_id in instance_ids:
        subprocess.run(
            [aws, "ec2", "describe-instance-status", "--instance-id", instance_id, "--endpoint-url", endpoint],
            check=True,
            capture_output=True,
        )
    return len(instance_ids), time.perf_counter() - started


def main() -> None:
    os.environ.update(FAKE_CREDENTIALS)
    recorder = CallRecorder()
    server, endpoint = start_moto(recorder)
    world = World(endpoint)
    world.build_load_balancer()
    target = AwsTarget(region=REGION, endpoint_url=endpoint)
    print(f"one gate evaluation, {len(world.rule_arns)} target groups, moto on {endpoint}, median of {REPEATS}")
    row = "{:>9} | {:>10} | {:>7} | {:>14} | {:>10} | {}"
    print(row.format("instances", "gate calls", "gate s", "original calls", "original s", "ratio"))
    try:
        for size in SIZES:
            color = world.build_color(f"n{size}", instances=size)
            check = FitnessCheck(
                asg_name=color.asg_name,
                target_group_arns=color.target_group_arns,
                ami_id=color.ami_id,
                expected_count=size,
                timeout_seconds=60,
                poll_seconds=1,
            )
            calls, seconds = gate_evaluation(target, check, recorder)
            original_calls, original_seconds = original_poll(world.instance_ids(color), endpoint)
            ratio = original_seconds / seconds
            print(row.format(size, calls, f"{seconds:.3f}", original_calls, f"{original_seconds:.2f}", f"{ratio:.0f}x"))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
