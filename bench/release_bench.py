"""API calls and seconds of a promotion, a one-up rollback and an unchanged re-up, for 2 and 20 routes.

Each `pulumi up` runs the real program and providers through the engine model of the tests
(tests/engine.py) against a moto server on 127.0.0.1 that counts every call it receives, from the
program's reads, the provider host and Packer alike. Beside them, the calls the original flow's
script (../shared/reference) makes for the same step, counted from its code: one describe-instances,
one describe-instance-status per instance per poll, one modify-rule per rule; its re-run always
bakes (force_deregister) and moves every rule again. Instances per color: 2; one poll each.
Run from the repository root: venv/bin/python -m bench.release_bench
"""

import os
import tempfile
import time
from pathlib import Path

import requests

from tests.aws_model import AwsModel
from tests.aws_world import World
from tests.call_recorder import READ_PREFIXES, CallRecorder
from tests.engine import Engine
from tests.moto_server import FAKE_CREDENTIALS, start_moto
from tests.project import Project
from tests.provider_host import provider_host

ROUTE_COUNTS = (2, 20)
INSTANCES = 2


def original_calls(step: str, routes: int) -> str:
    """Calls of the reference script for one step: describe-instances, per-instance status, per-rule modify."""
    calls = 1 + INSTANCES + routes
    if step == "unchanged re-up":
        return f"{calls} ({routes} writes) + a Packer bake"
    return f"{calls} ({routes} writes)"


def measure(engine: Engine, recorder: CallRecorder, stack: str) -> tuple[int, int, int, float]:
    """(calls, writes, Packer bakes, seconds) of one `pulumi up` of the stack."""
    recorder.clear()
    started = time.perf_counter()
    engine.up(stack)
    seconds = time.perf_counter() - started
    operations = recorder.operations()
    writes = [operation for operation in operations if not operation.startswith(READ_PREFIXES)]
    return len(operations), len(writes), operations.count("CreateImage"), seconds


def bench(endpoint: str, recorder: CallRecorder, routes: int, scratch: Path) -> list[tuple[str, int, int, int, float]]:
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    world = World(endpoint)
    world.build_load_balancer(routes=tuple(f"r{index}" for index in range(routes)))
    project = Project.create(scratch / f"project-{routes}", world.project_config())
    rows = []
    with provider_host(cwd=project.root) as host:
        engine = Engine(project, AwsModel(endpoint), host)
        engine.up("blue")
        engine.up("green")
        project.promote("green")
        rows.append(("promotion", *measure(engine, recorder, "green")))
        project.promote("blue")
        rows.append(("one-up rollback", *measure(engine, recorder, "blue")))
        rows.append(("unchanged re-up", *measure(engine, recorder, "blue")))
    return rows


def main() -> None:
    os.environ.update(FAKE_CREDENTIALS)
    recorder = CallRecorder()
    server, endpoint = start_moto(recorder)
    row = "{:>6} | {:<15} | {:>5} | {:>6} | {:>6} | {:>7} | {}"
    print(f"one `pulumi up` each, moto on {endpoint}, {INSTANCES} instances per color")
    print(row.format("routes", "step", "calls", "writes", "bakes", "seconds", "original flow's calls"))
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for routes in ROUTE_COUNTS:
                for step, calls, writes, bakes, seconds in bench(endpoint, recorder, routes, Path(scratch)):
                    original = original_calls(step, routes)
                    print(row.format(routes, step, calls, writes, bakes, f"{seconds:.2f}", original))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
