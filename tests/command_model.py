"""A stand-in for the pulumi-command provider plugin, for `command:local:Command`.

Like the plugin: a change of `triggers` replaces the resource (no `update` command given), a
change of any other input updates it, and both run the command again; create and update run the
command with `/bin/sh -c` in the project directory with the given environment added; a command
that exits non-zero fails the step with its stderr; a preview runs nothing. Each output line goes
to the user, as the plugin logs it.
"""

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi.output import contains_unknowns

COMMAND = "command:local:Command"


class CommandFailed(Exception):
    pass


@dataclass
class CommandModel:
    cwd: Path
    output: list[str] = field(default_factory=list)

    def handles(self, type_: str) -> bool:
        return type_ == COMMAND

    def check(self, type_: str, name: str, olds: dict[str, Any] | None, news: dict[str, Any]) -> dict[str, Any]:
        return {"interpreter": ["/bin/sh", "-c"], "addPreviousOutputInEnv": True, **news}

    def diff(
        self,
        type_: str,
        old_inputs: dict[str, Any],
        olds: dict[str, Any],
        news: dict[str, Any],
        ignore: list[str],
        replace_on: list[str],
    ) -> tuple[list[str], list[str]]:
        changed = [
            key for key in {*news, *old_inputs} if key not in ignore and _differs(old_inputs.get(key), news.get(key))
        ]
        replaces = [key for key in changed if key in ("triggers", *replace_on) and not news.get("update")]
        return changed, replaces

    def preview_outputs(self, type_: str, olds: dict[str, Any] | None, news: dict[str, Any]) -> dict[str, Any]:
        return dict(news)  # stdout and stderr stay unknown: nothing ran

    def create(self, type_: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return os.urandom(8).hex(), {**props, **self._run(props["create"], props)}

    def update(
        self, type_: str, id_: str, olds: dict[str, Any], news: dict[str, Any], ignore: list[str]
    ) -> dict[str, Any]:
        previous = {"PULUMI_COMMAND_STDOUT": olds.get("stdout", ""), "PULUMI_COMMAND_STDERR": olds.get("stderr", "")}
        return {**news, **self._run(news.get("update") or news["create"], news, previous)}

    def delete(self, type_: str, id_: str, props: dict[str, Any]) -> None:
        if props.get("delete"):
            self._run(props["delete"], props)

    def read(self, type_: str, id_: str, props: dict[str, Any]) -> dict[str, Any] | None:
        return props

    def _run(self, command: str, props: dict[str, Any], extra: dict[str, str] | None = None) -> dict[str, str]:
        environment = {**os.environ, **(extra or {}), **(props.get("environment") or {})}
        done = subprocess.run(
            [*props["interpreter"], command],
            cwd=props.get("dir") or self.cwd,
            env=environment,
            capture_output=True,
            text=True,
        )
        self.output += (done.stdout + done.stderr).splitlines()
        if done.returncode:
            raise CommandFailed(f"exit status {done.returncode}: running {command!r}:\n{done.stderr}")
        return {"stdout": done.stdout.rstrip("\n"), "stderr": done.stderr.rstrip("\n")}


def _differs(old: Any, new: Any) -> bool:
    return contains_unknowns(new) or old != new
