"""Runs `packer build -machine-readable` without a shell and reads its output.

Variables go to Packer as PKR_VAR_* environment variables, never as arguments (`ps` shows a
process's arguments to every user of the machine), and secret values are masked in every line
that reaches the user. Machine-readable lines are `timestamp,target,type,data...`; commas inside
data are written as `%!(PACKER_COMMA)` and newlines as a literal `\\n`.
"""

import os
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from components.progress import masked, report


class PackerFailed(Exception):
    """Packer did not produce an image; the message quotes Packer's own error lines."""


@dataclass(frozen=True)
class PackerLine:
    target: str
    type: str
    data: tuple[str, ...]


def _unescape(field: str) -> str:
    return field.replace("%!(PACKER_COMMA)", ",").replace("\\n", "\n").replace("\\r", "\r")


def parse_line(raw: str) -> PackerLine | None:
    """A machine-readable line, or None for anything else Packer printed."""
    fields = raw.rstrip("\n").split(",")
    if len(fields) < 3 or not fields[0].isdigit():
        return None
    return PackerLine(target=fields[1], type=fields[2], data=tuple(_unescape(field) for field in fields[3:]))


def artifact_id(lines: list[PackerLine]) -> str | None:
    """The AMI id from `artifact,0,id,<region>:<ami>` (the last one if several regions were built)."""
    ids = [line.data[2] for line in lines if line.type == "artifact" and line.data[:2] == ("0", "id")]
    return ids[-1].split(":")[-1] if ids else None


def error_lines(lines: list[PackerLine]) -> list[str]:
    """Packer's errors: per-build `error` lines, else the `ui,error` lines."""
    errors = [line.data[0] for line in lines if line.type == "error" and line.target and line.data]
    if not errors:
        errors = [line.data[1] for line in lines if line.type == "ui" and line.data[:1] == ("error",)]
    return [error.strip() for error in errors if error.strip()]


def build_argv(packer: str, template_dir: Path, only: str) -> list[str]:
    return [packer, "build", "-machine-readable", "-color=false", f"-only={only}", str(template_dir)]


def run_build(
    argv: list[str], variables: dict[str, str], timeout_seconds: float, source: str, secrets: list[str]
) -> list[PackerLine]:
    """Runs Packer, streaming its progress; kills its whole process group at the timeout.

    `variables` reach the template as PKR_VAR_<name>; `secrets` never appear in what is reported.
    """
    if shutil.which(argv[0]) is None:
        raise PackerFailed(f"'{argv[0]}' is not on PATH: install Packer (./scripts/setup installs Debian's packer)")
    secrets = [secret for secret in secrets if secret]
    env = {
        **os.environ,
        **{f"PKR_VAR_{name}": value for name, value in variables.items()},
        "CHECKPOINT_DISABLE": "1",
        "PACKER_NO_COLOR": "1",
    }
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        os.killpg(process.pid, signal.SIGKILL)

    timer = threading.Timer(timeout_seconds, kill)
    timer.start()
    lines: list[PackerLine] = []
    other_output: list[str] = []
    try:
        assert process.stdout is not None
        for raw in process.stdout:
            line = parse_line(raw)
            if line is None:
                if raw.strip():
                    other_output.append(raw.strip())
                continue
            lines.append(line)
            if line.type == "ui" and len(line.data) > 1 and line.data[1].strip():
                report(source, masked(line.data[1].strip(), secrets))
        exit_code = process.wait()
    finally:
        timer.cancel()
    if timed_out.is_set():
        raise PackerFailed(f"packer build timed out after {timeout_seconds:g}s and was killed; no image was recorded")
    if exit_code != 0:
        errors = error_lines(lines) or other_output[-10:] or ["(no error output)"]
        raise PackerFailed(masked(f"packer build failed (exit code {exit_code}):\n" + "\n".join(errors), secrets))
    return lines
