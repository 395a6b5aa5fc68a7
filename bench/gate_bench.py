"""Cost of one health-gate evaluation: bluegreen's HealthGate next to the original flow.

The original script ran one `aws ec2 describe-instance-status --instance-id X` process per
instance on every poll. HealthGate makes one call per target group plus a fixed number of
batched calls. Both run here against the same moto server on 127.0.0.1, side by side, for
2, 20 and 100 instances. Run from the repository root: venv/bin/python -m bench.gate_bench
"""

import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from moto.server import ThreadedMotoServer

from components.aws import Endpoint
from components.health_gate import GateClients, GateInputs, judge, observe
from tests.aws_world import REGION, World
from tests.call_recorder import CallRecorder

SIZES = (2, 20, 100)
REPEATS = 3


def gate_evaluation(inputs: GateInputs, recorder: CallRecorder) -> tuple[int, float]:
    clients = GateClients.for_endpoint(inputs.endpoint)
    timings = []
    for _ in range(REPEATS):
        recorder.clear()
        started = time.perf_counter()
        verdict = judge(observe(inputs, clients), inputs)
        timings.append(time.perf_counter() - started)
        assert verdict.fit, verdict.progress
    return len(recorder.calls), statistics.median(timings)


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
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION=REGION)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    recorder = CallRecorder()
    Endpoint.client = recorder.wrap(Endpoint.client)  # type: ignore[method-assign]
    world = World(endpoint)
    world.build_load_balancer()
    print(f"one gate evaluation, {len(world.rule_arns)} target groups, moto on {endpoint}, median of {REPEATS}")
    row = "{:>9} | {:>10} | {:>7} | {:>14} | {:>10} | {}"
    print(row.format("instances", "gate calls", "gate s", "original calls", "original s", "ratio"))
    try:
        for size in SIZES:
            color = world.build_color(f"n{size}", instances=size)
            inputs = GateInputs.from_props(
                {
                    "region": REGION,
                    "endpoint_url": endpoint,
                    "asg_name": color.asg_name,
                    "target_group_arns": color.target_group_arns,
                    "ami_id": color.ami_id,
                    "expected_count": size,
                    "timeout_seconds": 60,
                    "poll_seconds": 1,
                }
            )
            calls, seconds = gate_evaluation(inputs, recorder)
            original_calls, original_seconds = original_poll(world.instance_ids(color), endpoint)
            ratio = original_seconds / seconds
            print(row.format(size, calls, f"{seconds:.3f}", original_calls, f"{original_seconds:.2f}", f"{ratio:.0f}x"))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
