"""A model of the Pulumi engine, for release stories: `pulumi preview`, `up`, `refresh` and `destroy`.

It runs the real __main__.py for a stack under the SDK's mock monitor and carries out each
resource registration the way the engine does (FACTS.md, "Engine semantics that mocks hide"):

- Each step is check, then diff against the stack's state: same, create, update, or replace
  (create-before-delete: the old resource is deleted at the end of the update, with its old id
  and outputs, even when the new one got the same id).
- Dynamic resources run in the real dynamic-provider host. A preview calls only Check and Diff,
  with unknown values on the wire; the outputs of a dynamic resource that changes are unknown.
- pulumi-aws resources run in tests/aws_model.py, against moto; pulumi-command's local.Command
  in tests/command_model.py, for real.
- A failed step fails the update: every step done before it stays recorded, later registrations
  are refused, and nothing is deleted.
- Deletes (resources no longer registered, replaced ones) run at the end, dependents first. A
  protected resource is not deleted, nor replaced while it stays protected.
- `refresh` calls read and replaces the stored outputs; `targets` limits steps and deletes to those
  URNs, and every other resource keeps its state and is not diffed. The program always runs.
- Secret inputs reach providers as plain values (the host does not accept secrets); an output is
  secret when listed in additional_secret_outputs or when its input was.

State lives in one JSON file per stack, so a second process (another stack upped at once) works
on the same stacks.
"""

import asyncio
import json
import logging
import runpy
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc
import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from tests.aws_model import AwsModel
from tests.command_model import CommandModel
from tests.project import Project
from tests.provider_host import PROVIDER_KEY, ProviderHost, provider_host
from tests.stack_config import PROJECT, PROJECT_DIR

DYNAMIC = "pulumi-python:dynamic"
SECRET = {rpc._special_sig_key: rpc._special_secret_sig}


class UpdateFailed(Exception):
    """The operation failed; the message is what the engine would print."""

    def __init__(self, message: str, logs: list[tuple[str, str]] | None = None, progress: list[str] | None = None):
        super().__init__(message)
        self.logs, self.progress = logs or [], progress or []


@dataclass
class Entry:
    """One resource in a stack's state."""

    urn: str
    type: str
    custom: bool
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    parent: str = ""
    dependencies: list[str] = field(default_factory=list)
    protect: bool = False
    provider: str = ""
    """The explicit provider reference, "urn::id"; empty for the default provider."""
    ignore_changes: list[str] = field(default_factory=list)
    replace_on_changes: list[str] = field(default_factory=list)
    secret_outputs: list[str] = field(default_factory=list)
    delete: bool = False
    """Replaced: waiting for its delete at the end of an update."""

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]


@dataclass(frozen=True)
class Step:
    urn: str
    op: str
    """same, create, update, replace, delete, delete-replaced, read, skip (not targeted)."""
    changed: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]


@dataclass
class Result:
    steps: list[Step]
    registered: dict[str, Entry]
    """What the program registered, by resource name, with the inputs after check."""
    exports: dict[str, Any]
    logs: list[tuple[str, str]]
    """(level, message) of the program's pulumi.log calls."""
    progress: list[str]
    """What the dynamic providers wrote to stderr, which the engine streams to the user."""

    def op(self, name: str) -> str | None:
        """The operation on the resource of this name, if any (a replacement's delete is part of "replace")."""
        ops = [step.op for step in self.steps if step.name == name and step.op != "delete-replaced"]
        return ops[-1] if ops else None

    def changes(self) -> list[Step]:
        return [step for step in self.steps if step.op not in ("same", "skip")]

    def warnings(self) -> list[str]:
        return [message for level, message in self.logs if level == "WARNING"]


def _unwrap_secrets(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return _unwrap_secrets(value.get("value"))[0], True
    if isinstance(value, dict):
        items = {key: _unwrap_secrets(item) for key, item in value.items()}
        return {key: item for key, (item, _) in items.items()}, any(secret for _, secret in items.values())
    if isinstance(value, list):
        items = [_unwrap_secrets(item) for item in value]
        return [item for item, _ in items], any(secret for _, secret in items)
    return value, False


def plain_inputs(struct: Any) -> tuple[dict[str, Any], list[str]]:
    """A registration's inputs as providers get them (no secrets, unknowns kept) and the secret ones' names."""
    props = rpc.deserialize_properties(struct, True)
    plain, secret = {}, []
    for key, value in props.items():
        plain[key], is_secret = _unwrap_secrets(value)
        if is_secret:
            secret.append(key)
    return plain, secret


def delete_order(entries: list[Entry]) -> list[Entry]:
    """Dependents before what they depend on (children before parents). The engine deletes resources that
    do not depend on each other in parallel, in no set order: here the earliest registered goes first,
    the order least kind to a program that forgot a dependency (an image before the group that runs it)."""
    remaining = list(entries)
    ordered: list[Entry] = []
    while remaining:
        needed = {dep for entry in remaining for dep in [*entry.dependencies, entry.parent]}
        ready = [entry for entry in remaining if entry.urn not in needed] or remaining[-1:]
        for entry in ready:
            ordered.append(entry)
            remaining.remove(entry)
    return ordered


class _Run:
    """One preview or update of one stack: turns registrations into steps."""

    def __init__(self, engine: "Engine", stack: str, preview: bool, targets: set[str] | None) -> None:
        self.engine, self.stack, self.preview, self.targets = engine, stack, preview, targets
        state = engine.load(stack)
        self.old = {entry.urn: entry for entry in state if not entry.delete}
        self.pending = [entry for entry in state if entry.delete]
        self.new: dict[str, Entry] = {}
        self.steps: list[Step] = []
        self.failure: str | None = None
        self.lock = threading.Lock()
        self.before_steps: Callable[[], None] | None = None

    def snapshot(self) -> list[Entry]:
        unprocessed = [entry for urn, entry in self.old.items() if urn not in self.new]
        return [*self.new.values(), *unprocessed, *self.pending]

    def targeted(self, urn: str) -> bool:
        return self.targets is None or urn in self.targets

    def record(self, entry: Entry, step: Step) -> None:
        self.new[entry.urn] = entry
        self.steps.append(step)
        if not self.preview:
            self.engine.save(self.stack, self.snapshot())

    def register(self, urn: str, request: Any) -> tuple[str, dict[str, Any], list[str]]:
        with self.lock:
            if self.failure:
                raise UpdateFailed(f"{urn}: not started, an earlier step failed")
            if self.before_steps:
                hook, self.before_steps = self.before_steps, None
                hook()
            try:
                return self.step(urn, request)
            except grpc.RpcError as error:
                self.failure = f"{urn}: {error.details()}"  # the provider's traceback, as the CLI prints it
                raise UpdateFailed(self.failure) from error
            except Exception as error:
                self.failure = f"{urn}: {error}"
                raise

    def step(self, urn: str, request: Any) -> tuple[str, dict[str, Any], list[str]]:
        old = self.old.get(urn)
        news, secret_inputs = plain_inputs(request.object)
        base = Entry(
            urn=urn,
            type=request.type,
            custom=request.custom,
            id="",
            inputs=news,
            outputs={},
            parent=request.parent,
            dependencies=list(request.dependencies),
            protect=request.protect,
            provider=request.provider,
            ignore_changes=list(request.ignoreChanges),
            replace_on_changes=list(request.replaceOnChanges),
            secret_outputs=sorted({*secret_inputs, *request.additionalSecretOutputs}),
        )
        if not request.custom:
            self.record(base, Step(urn, "same" if old else "create"))
            return "", {}, []
        if not self.targeted(urn):
            if old is None:
                raise UpdateFailed(f"{urn} is not targeted and does not exist yet")
            self.record(old, Step(urn, "skip"))
            return old.id, old.outputs, old.secret_outputs
        ignore = list(request.ignoreChanges)
        if old is not None:
            for key in ignore:
                if key in old.inputs:
                    news[key] = old.inputs[key]
        if request.type.startswith(DYNAMIC):
            return self._dynamic(base, old)
        if any(model.handles(request.type) for model in self.engine.models):
            return self._modelled(base, old, ignore, list(request.replaceOnChanges))
        raise UpdateFailed(f"{urn}: no provider for {request.type} in this engine model")

    def _protected_replace(self, base: Entry, old: Entry) -> None:
        if base.protect and old.protect:
            raise UpdateFailed(
                f"unable to replace resource {base.urn} as it is currently marked for protection. To unprotect the "
                "resource, remove the `protect` flag from the resource in your Pulumi program and run `pulumi up`"
            )

    def _finish(
        self, base: Entry, old: Entry | None, op: str, changed: tuple[str, ...], id_: str, outputs: dict[str, Any]
    ) -> tuple[str, dict[str, Any], list[str]]:
        if op == "replace" and old is not None:
            self.pending.append(replace(old, delete=True))
        entry = replace(base, id=id_, outputs=outputs)
        self.record(entry, Step(base.urn, op, changed))
        return id_, outputs, entry.secret_outputs

    def _dynamic(self, base: Entry, old: Entry | None) -> tuple[str, dict[str, Any], list[str]]:
        host, urn = self.engine.host, base.urn
        checked, failures = host.check(urn, old.inputs if old else {}, base.inputs)
        if failures:
            raise UpdateFailed(f"{urn}: check failed: {'; '.join(failures)}")
        base = replace(base, inputs=checked)
        if old is None:
            op, changed = "create", ()
        else:
            diff = host.diff(urn, old.id, old.outputs, checked)
            if diff.changes == provider_pb2.DiffResponse.DIFF_NONE:
                return self._finish(base, old, "same", (), old.id, old.outputs)
            op, changed = ("replace", tuple(diff.replaces)) if diff.replaces else ("update", ())
        if op == "replace":
            self._protected_replace(base, old)  # type: ignore[arg-type]
        if self.preview:
            return self._finish(base, old, op, changed, old.id if old else "", checked)
        if op == "update":
            outputs = host.update(urn, old.id, old.outputs, checked)  # type: ignore[union-attr]
            return self._finish(base, old, op, changed, old.id, outputs)  # type: ignore[union-attr]
        id_, outputs = host.create(urn, checked)
        return self._finish(base, old, op, changed, id_, outputs)

    def _modelled(
        self, base: Entry, old: Entry | None, ignore: list[str], replace_on: list[str]
    ) -> tuple[str, dict[str, Any], list[str]]:
        aws, type_, registered = self.engine.model(base.type), base.type, base.inputs
        checked = aws.check(type_, base.name, old.inputs if old else None, registered)
        base = replace(base, inputs=checked)
        if old is None:
            op, changed = "create", ()
        else:
            changed_list, replaces = aws.diff(type_, old.inputs, old.outputs, checked, ignore, replace_on)
            if not changed_list:
                return self._finish(base, old, "same", (), old.id, old.outputs)
            op, changed = ("replace" if replaces else "update"), tuple(changed_list)
        if op == "replace":
            self._protected_replace(base, old)  # type: ignore[arg-type]
            # The engine checks a replacement again without the old inputs: auto-names are new.
            checked = aws.check(type_, base.name, None, registered)
            base = replace(base, inputs=checked)
        if self.preview:
            previous = old.outputs if op == "update" else None  # type: ignore[union-attr]
            return self._finish(
                base, old, op, changed, old.id if old else "", aws.preview_outputs(type_, previous, checked)
            )
        if op == "update":
            outputs = aws.update(type_, old.id, old.outputs, checked, ignore)  # type: ignore[union-attr]
            return self._finish(base, old, op, changed, old.id, outputs)  # type: ignore[union-attr]
        id_, outputs = aws.create(type_, checked)
        return self._finish(base, old, op, changed, id_, outputs)

    def delete(self, entry: Entry) -> None:
        if entry.protect and not entry.delete:
            raise UpdateFailed(
                f"unable to delete resource {entry.urn} as it is currently marked for protection: "
                "set protect to false and run `pulumi up` first"
            )
        self.steps.append(Step(entry.urn, "delete-replaced" if entry.delete else "delete"))
        if self.preview:
            return
        if entry.type.startswith(DYNAMIC):
            self.engine.host.delete(entry.urn, entry.id, entry.outputs)
        elif entry.custom:
            self.engine.model(entry.type).delete(entry.type, entry.id, entry.outputs)
        if entry.delete:
            self.pending.remove(entry)
        else:
            self.old.pop(entry.urn)
        self.engine.save(self.stack, self.snapshot())

    def delete_unregistered(self) -> None:
        condemned = [entry for urn, entry in self.old.items() if urn not in self.new and self.targeted(urn)]
        condemned += [entry for entry in self.pending if self.targeted(entry.urn)]
        for entry in delete_order(condemned):
            self.delete(entry)


class _Monitor(pulumi_mocks.MockMonitor):
    """The mock monitor, with each registration turned into an engine step."""

    def __init__(self, run: _Run) -> None:
        super().__init__(_NoMocks())
        self.run = run

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)
        pulumi_mocks._ensure_event_loop()
        id_, outputs, secret = self.run.register(urn, request)
        shown = {key: {**SECRET, "value": value} if key in secret else value for key, value in outputs.items()}
        shown.pop(PROVIDER_KEY, None)
        return resource_pb2.RegisterResourceResponse(
            urn=urn, id=id_, object=_sync_await(rpc.serialize_properties(shown, {}))
        )


class _NoMocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        raise AssertionError("registrations go through the engine model")

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        raise AssertionError(f"the program makes no invokes, got {args.token}")


class _Logs(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelname, record.getMessage()))


def _drain_leftover_tasks() -> None:
    """A failed program leaves tasks behind in the SDK's loop: cancel them, or the next run would await them."""
    loop = asyncio.get_event_loop()
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    pulumi.runtime.settings.SETTINGS.outputs.clear()


class Engine:
    """`pulumi` for one project copy: its stacks' state, one dynamic-provider host, moto behind pulumi-aws."""

    def __init__(self, project: Project, aws: AwsModel, host: ProviderHost) -> None:
        self.project, self.aws, self.host = project, aws, host
        self.commands = CommandModel(project.root)
        self.models: list[AwsModel | CommandModel] = [aws, self.commands]
        self.state_dir = project.root / ".pulumi"
        self.state_dir.mkdir(exist_ok=True)

    def model(self, type_: str) -> AwsModel | CommandModel:
        return next(model for model in self.models if model.handles(type_))

    def progress_mark(self) -> tuple[int, int]:
        return self.host.stderr_mark(), len(self.commands.output)

    def progress(self, mark: tuple[int, int]) -> list[str]:
        """What the user saw: the providers' stderr, then the commands' output."""
        return [*self.host.stderr(mark[0]), *self.commands.output[mark[1] :]]

    # -- state --------------------------------------------------------------------------------------------

    def load(self, stack: str) -> list[Entry]:
        file = self.state_dir / f"{stack}.json"
        return [Entry(**entry) for entry in json.loads(file.read_text())] if file.exists() else []

    def save(self, stack: str, entries: list[Entry]) -> None:
        (self.state_dir / f"{stack}.json").write_text(json.dumps([asdict(entry) for entry in entries], indent=1))

    def resource(self, stack: str, name: str) -> Entry:
        found = [entry for entry in self.load(stack) if entry.name == name and not entry.delete]
        assert len(found) == 1, f"expected one {name} in {stack}, got {len(found)}"
        return found[0]

    def resources(self, stack: str) -> list[Entry]:
        return self.load(stack)

    # -- operations ---------------------------------------------------------------------------------------

    def preview(self, stack: str, targets: set[str] | None = None) -> Result:
        return self._operate(stack, preview=True, targets=targets)

    def up(
        self,
        stack: str,
        targets: set[str] | None = None,
        refresh: bool = False,
        before_steps: Callable[[], None] | None = None,
    ) -> Result:
        """`pulumi up` (with `--target` for each URN in targets); raises UpdateFailed as the CLI would fail."""
        if refresh:
            self.refresh(stack)
        return self._operate(stack, preview=False, targets=targets, before_steps=before_steps)

    def refresh(self, stack: str) -> Result:
        mark, steps, kept = self.progress_mark(), [], []
        for entry in self.load(stack):
            if entry.custom and not entry.delete:
                if entry.type.startswith(DYNAMIC):
                    id_, outputs = self.host.read(entry.urn, entry.id, entry.outputs)
                    refreshed = replace(entry, outputs=outputs) if id_ else None
                else:
                    outputs = self.model(entry.type).read(entry.type, entry.id, entry.outputs)
                    refreshed = replace(entry, outputs=outputs) if outputs is not None else None
                steps.append(Step(entry.urn, "read" if refreshed else "delete"))
                if refreshed is None:
                    continue
                entry = refreshed
            kept.append(entry)
        self.save(stack, kept)
        return Result(steps, {}, {}, [], self.progress(mark))

    def destroy(self, stack: str) -> Result:
        mark = self.progress_mark()
        run = _Run(self, stack, preview=False, targets=None)
        try:
            for entry in delete_order([*run.old.values(), *run.pending]):
                run.delete(entry)
        except grpc.RpcError as error:
            raise UpdateFailed(error.details()) from error
        return Result(run.steps, {}, {}, [], self.progress(mark))

    def _operate(
        self,
        stack: str,
        preview: bool,
        targets: set[str] | None,
        before_steps: Callable[[], None] | None = None,
    ) -> Result:
        _drain_leftover_tasks()
        run = _Run(self, stack, preview, targets)
        run.before_steps = before_steps
        mark = self.progress_mark()
        logs = _Logs()
        logger = logging.getLogger(f"bluegreen-engine-{id(run)}")
        logger.addHandler(logs)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        pulumi.runtime.settings.ROOT.set(None)
        pulumi.runtime.set_mocks(
            _NoMocks(), project=PROJECT, stack=stack, preview=preview, logger=logger, monitor=_Monitor(run)
        )
        pulumi.runtime.settings.SETTINGS.root_directory = str(self.project.root)
        pulumi.runtime.set_all_config(self.project.config(stack))
        root = pulumi.runtime.settings.get_root_resource()
        exports: dict[str, Any] = {}

        async def program() -> None:
            runpy.run_path(str(self.project.root / "__main__.py"), run_name="__main__")

        async def collect() -> None:
            for key, value in root.outputs.items():
                exports[key] = await pulumi.Output.from_input(value).future(with_unknowns=True)

        try:
            _sync_await(run_pulumi_func(program))
            _sync_await(collect())
            run.delete_unregistered()
        except Exception as error:
            message = run.failure or (error.details() if isinstance(error, grpc.RpcError) else str(error))
            raise UpdateFailed(message, logs.records, self.progress(mark)) from error
        finally:
            logger.removeHandler(logs)
        registered = {entry.name: entry for entry in run.new.values()}
        return Result(run.steps, registered, exports, logs.records, self.progress(mark))


def up_in_another_process(project: Project, endpoint: str, stack: str) -> subprocess.CompletedProcess[str]:
    """`pulumi up` of a stack from a second terminal: its own process, engine and provider host, the same state."""
    argv = [sys.executable, "-m", "tests.engine", str(project.root), endpoint, stack]
    return subprocess.run(argv, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300)


def main() -> None:
    root, endpoint, stack = sys.argv[1:4]
    with provider_host(cwd=Path(root)) as host:
        Engine(Project(Path(root)), AwsModel(endpoint), host).up(stack)


if __name__ == "__main__":
    main()
