"""The README documents what the project really has: its config keys and its CI commands."""

import json
import re
from typing import Any

from tests.stack_config import PROJECT_DIR, project_file

README = (PROJECT_DIR / "README.md").read_text()


def _type_and_default(entry: Any) -> tuple[str, str]:
    """How the README states a key's type and default."""
    if not isinstance(entry, dict):
        return "string", f"`{entry}`"
    if "value" in entry:
        value = entry["value"]
        shown = json.dumps(value)
        return ("object" if isinstance(value, dict) else "list of objects"), (
            f"`{shown}`" if len(shown) <= 20 else "see Pulumi.yaml"
        )
    type_ = entry["type"] if entry["type"] != "array" else f"array of {entry['items']['type']}"
    default = entry["default"]
    return type_, f"`{default if isinstance(default, str) else json.dumps(default)}`" if default != "" else '`""`'


def _documented_rows() -> dict[str, list[str]]:
    section = README.split("## Configuration", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if re.match(r"^\| `[a-z_:]+` \|", line)]
    return {row.split("|")[1].strip().strip("`"): [cell.strip() for cell in row.split("|")[2:-1]] for row in rows}


def test_readme_config_table_matches_pulumi_yaml() -> None:
    documented = _documented_rows()
    declared = project_file()["config"]
    assert list(documented) == list(declared), "README config table lists other keys than Pulumi.yaml"
    for key, entry in declared.items():
        type_, default, description = documented[key]
        assert (type_, default) == _type_and_default(entry), f"README row of {key} is stale"
        if isinstance(entry, dict) and "description" in entry:
            assert description == entry["description"], f"README description of {key} is stale"


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
