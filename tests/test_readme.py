"""The README documents what the project really has: its config keys and its CI commands."""

import json
import re
from typing import Any

from tests.stack_config import PROJECT_DIR, project_file

README = (PROJECT_DIR / "README.md").read_text()


def _default_cell(entry: Any) -> str:
    if not isinstance(entry, dict):
        return f"`{entry}`"
    if "value" in entry:
        return "see Pulumi.yaml"
    default = entry["default"]
    return f"`{default if isinstance(default, str) else json.dumps(default)}`" if default != "" else '`""`'


def _row(key: str, entry: Any) -> str:
    if isinstance(entry, dict) and "type" in entry:
        type_ = entry["type"] if entry["type"] != "array" else f"array of {entry['items']['type']}"
        description = entry["description"]
    elif isinstance(entry, dict):
        type_, description = "object", "Routes: see below."
    else:
        type_, description = "string", "AWS region of both stacks."
    return f"| `{key}` | {type_} | {_default_cell(entry)} | {description} |"


def expected_table() -> list[str]:
    return [_row(key, entry) for key, entry in project_file()["config"].items()]


def test_readme_config_table_matches_pulumi_yaml() -> None:
    section = README.split("## Configuration", 1)[1].split("\n#", 1)[0]
    documented = [line for line in section.splitlines() if re.match(r"^\| `[a-z_:]+` \|", line)]
    expected = expected_table()
    assert documented == expected, "README config table is stale; it should read:\n" + "\n".join(expected)


def test_every_declared_key_has_type_description_and_default() -> None:
    for key, entry in project_file()["config"].items():
        if isinstance(entry, dict) and "value" not in entry:
            assert {"type", "description", "default"} <= set(entry), key


def test_ci_runs_the_readme_setup_and_test_commands() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^\s*(\S.*)$", quick_start.split("```sh", 1)[1].split("```", 1)[0], re.MULTILINE)
    ci = (PROJECT_DIR / ".ci" / "run").read_text().splitlines()
    assert len(commands) == 2
    for command in commands:
        assert command in ci, f"README command {command!r} is not what .ci/run runs"
