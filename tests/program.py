"""Runs the real __main__.py under Pulumi's mock engine and records what it registers."""

import runpy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.protection import GuardInputs, Traffic, plan_capacity
from tests.stack_config import PROJECT, PROJECT_DIR, stack_config

GUARD = "pulumi-python:dynamic/bluegreen:LiveColorGuard"
GATE = "pulumi-python:dynamic/bluegreen:HealthGate"
SWITCH = "pulumi-python:dynamic/bluegreen:TrafficSwitch"
DESTROY_GUARD = "pulumi-python:dynamic/bluegreen:DestroyGuard"
BAKED_IMAGE = "pulumi-python:dynamic/bluegreen:BakedImage"
BAKED_AMI = "ami-0baked0000000000a"


@dataclass
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    dependencies: list[str] = field(default_factory=list)
    replace_on_changes: list[str] = field(default_factory=list)
    delete_before_replace: bool = False


def _fake_outputs(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    """What the real providers would add to the inputs."""
    name = args.inputs.get("name", args.name)
    if args.typ == "aws:lb/targetGroup:TargetGroup":
        return {"arn": f"arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/{name}/0123456789abcdef"}
    if args.typ == "aws:ec2/launchTemplate:LaunchTemplate":
        return {"latestVersion": 1, "arn": f"arn:aws:ec2:ap-northeast-1:123456789012:launch-template/lt-{args.name}"}
    if args.typ == "aws:autoscaling/group:Group":
        return {"name": args.inputs["namePrefix"] + "20261126"}
    if args.typ == GUARD:
        # The real guard's own planning, as it would run when the rules point at nobody's color.
        planned, note = plan_capacity(GuardInputs.from_props(args.inputs), Traffic([], None), datetime.now(UTC))
        return {
            "min_size": planned.min_size,
            "max_size": planned.max_size,
            "desired_capacity": planned.desired,
            "serving_routes": [],
            "capacity_note": note,
        }
    if args.typ == BAKED_IMAGE:
        return {"ami_id": BAKED_AMI, "ami_name": "app-baked", "snapshot_ids": ["snap-0baked"]}
    if args.typ == GATE:
        return {"passed_at": "2026-11-26T00:00:00+00:00", "instance_ids": []}
    return {}


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.by_name: dict[str, Registered] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = {**args.inputs, **_fake_outputs(args)}
        self.by_name[args.name] = Registered(args.typ, args.name, args.inputs, outputs)
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """Keeps each registration's dependencies, which Mocks.new_resource cannot see."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.requests: dict[str, Any] = {}
        self.urns: dict[str, str] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        self.requests[request.name] = request
        self.urns[response.urn] = request.name
        return response


@dataclass
class ProgramRun:
    resources: dict[str, Registered]
    exports: dict[str, Any]

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources.values() if r.type == type_]

    def one(self, type_: str) -> Registered:
        found = self.of_type(type_)
        assert len(found) == 1, f"expected one {type_}, got {[r.name for r in found]}"
        return found[0]

    def depends_on(self, dependent: Registered, dependency: Registered) -> bool:
        return dependency.name in dependent.dependencies


def _run(stack: str, overrides: dict[str, Any]) -> tuple[ProgramRun, BaseException | None]:
    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(stack_config(stack, **overrides))
    root = pulumi.runtime.settings.get_root_resource()
    exports: dict[str, Any] = {}

    async def program() -> None:
        runpy.run_path(str(PROJECT_DIR / "__main__.py"), run_name="__main__")

    async def collect() -> None:
        for key, value in root.outputs.items():
            exports[key] = await pulumi.Output.from_input(value).future()

    error: BaseException | None = None
    try:
        _sync_await(run_pulumi_func(program))
        _sync_await(collect())
    except Exception as raised:  # noqa: BLE001 handed to the caller
        error = raised
    for registered in mocks.by_name.values():
        request = monitor.requests[registered.name]
        registered.dependencies = [monitor.urns.get(urn, urn) for urn in request.dependencies]
        registered.replace_on_changes = list(request.replaceOnChanges)
        registered.delete_before_replace = request.deleteBeforeReplace
    return ProgramRun(mocks.by_name, exports), error


def run_program(stack: str, **overrides: Any) -> ProgramRun:
    """Runs __main__.py as stack `stack` with its config (plus `overrides`) and waits for it."""
    run, error = _run(stack, overrides)
    if error is not None:
        raise error
    return run


def run_failing_program(stack: str, **overrides: Any) -> tuple[BaseException, ProgramRun]:
    """Runs __main__.py expecting it to fail; returns the error and what was registered anyway."""
    run, error = _run(stack, overrides)
    assert error is not None, "the program was expected to fail"
    return error, run
