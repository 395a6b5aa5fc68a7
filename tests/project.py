"""A copy of the project for one test, whose config the test edits as a team would.

Pulumi.yaml and the stack files are real copies (edited like `pulumi config set` and like a
commit to Pulumi.yaml); the program, its components and image/ are the repository's own.
"""

import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.stack_config import PROJECT_DIR, namespaced, stack_config

LINKED = ("__main__.py", "components")


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def create(cls, root: Path, shared: dict[str, Any], copy_image: bool = False) -> "Project":
        """A new copy of the repository's project in `root`, with `shared` settings in its Pulumi.yaml."""
        project = cls(root)
        root.mkdir(parents=True)
        for name in ("Pulumi.yaml", "Pulumi.blue.yaml", "Pulumi.green.yaml"):
            shutil.copy(PROJECT_DIR / name, root / name)
        for name in LINKED:
            (root / name).symlink_to(PROJECT_DIR / name)
        if copy_image:
            shutil.copytree(PROJECT_DIR / "image", root / "image")
        else:
            (root / "image").symlink_to(PROJECT_DIR / "image")
        for key, value in shared.items():
            project.set_shared(key, value)
        return project

    def _edit(self, file: Path, change: Any) -> None:
        document = (yaml.safe_load(file.read_text()) if file.exists() else None) or {}
        change(document)
        file.write_text(yaml.safe_dump(document, sort_keys=False))

    def set_shared(self, key: str, value: Any) -> None:
        """Sets a project-wide value in Pulumi.yaml (its default, or its value for object settings)."""

        def change(document: dict[str, Any]) -> None:
            entry = document["config"].get(key)
            if isinstance(entry, dict) and "value" in entry:
                entry["value"] = value
            elif isinstance(entry, dict):
                entry["default"] = value
            else:
                document["config"][key] = value

        self._edit(self.root / "Pulumi.yaml", change)

    def promote(self, color: str) -> None:
        """The promotion commit: active_color changes in Pulumi.yaml."""
        self.set_shared("active_color", color)

    def set(self, stack: str, key: str, value: Any) -> None:
        """`pulumi config set KEY VALUE --stack STACK`: writes Pulumi.<stack>.yaml."""

        def change(document: dict[str, Any]) -> None:
            plain = isinstance(value, int | float | bool)
            document.setdefault("config", {})[namespaced(key)] = str(value) if plain else value

        self._edit(self.root / f"Pulumi.{stack}.yaml", change)

    def config(self, stack: str) -> dict[str, str]:
        return stack_config(stack, self.root)
