"""Builds the config a stack's program sees, the way the Pulumi CLI does.

The CLI merges Pulumi.yaml's project defaults and values with Pulumi.<stack>.yaml
and hands every value to the program as a string (JSON for arrays and objects).
"""

import json
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
PROJECT = "bluegreen"


def _namespaced(key: str) -> str:
    return key if ":" in key else f"{PROJECT}:{key}"


def _as_config_string(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def project_file() -> dict[str, Any]:
    return yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())


def stack_config(stack: str, **overrides: Any) -> dict[str, str]:
    """Config of `stack`, with `overrides` (bare project keys) applied last."""
    merged: dict[str, Any] = {}
    for key, entry in project_file()["config"].items():
        if isinstance(entry, dict) and "value" in entry:
            merged[_namespaced(key)] = entry["value"]
        elif isinstance(entry, dict) and "default" in entry:
            merged[_namespaced(key)] = entry["default"]
        elif not isinstance(entry, dict):
            merged[_namespaced(key)] = entry
    stack_file = PROJECT_DIR / f"Pulumi.{stack}.yaml"
    if stack_file.exists():
        merged.update(yaml.safe_load(stack_file.read_text()).get("config", {}))
    for key, value in overrides.items():
        if value is None:
            merged.pop(_namespaced(key), None)
        else:
            merged[_namespaced(key)] = value
    return {key: _as_config_string(value) for key, value in merged.items()}
