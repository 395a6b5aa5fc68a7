"""Builds the config a stack's program sees, the way the Pulumi CLI does.

The CLI merges Pulumi.yaml's project defaults and values with Pulumi.<stack>.yaml and hands
every value to the program as a string (JSON for arrays and objects).
"""

import json
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
PROJECT = "bluegreen"


def namespaced(key: str) -> str:
    return key if ":" in key else f"{PROJECT}:{key}"


def _as_config_string(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def project_file(project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    return yaml.safe_load((project_dir / "Pulumi.yaml").read_text())


def stack_config(stack: str, project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    """Config of `stack`: Pulumi.yaml's values and defaults, then Pulumi.<stack>.yaml's."""
    merged: dict[str, Any] = {}
    for key, entry in project_file(project_dir)["config"].items():
        if isinstance(entry, dict) and "value" in entry:
            merged[namespaced(key)] = entry["value"]
        elif isinstance(entry, dict) and "default" in entry:
            merged[namespaced(key)] = entry["default"]
        elif not isinstance(entry, dict):
            merged[namespaced(key)] = entry
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if stack_file.exists():
        merged.update((yaml.safe_load(stack_file.read_text()) or {}).get("config") or {})
    return {key: _as_config_string(value) for key, value in merged.items()}
