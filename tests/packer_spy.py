"""A `packer` first on PATH that records how it was run, then runs the real Packer.

Each run records its argv, its parent process, the PKR_VAR_* variables it got and a copy of the
playbook variables the build wrote, so tests can prove what crossed the boundary and how.
"""

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REAL_PACKER = shutil.which("packer")

WRAPPER = """#!{python}
import json, os, shutil, subprocess, sys
record = {{
    "argv": sys.argv[1:],
    "ppid": os.getppid(),
    "variables": {{k[len("PKR_VAR_"):]: v for k, v in os.environ.items() if k.startswith("PKR_VAR_")}},
}}
status = subprocess.call([{real!r}, *sys.argv[1:]])
vars_file = os.environ.get("PKR_VAR_vars_file", "")
if vars_file and os.path.exists(vars_file):
    record["playbook_vars"] = open(vars_file).read()
with open({log!r}, "a") as log:
    log.write(json.dumps(record) + "\\n")
sys.exit(status)
"""


@dataclass
class PackerSpy:
    directory: Path

    @property
    def log(self) -> Path:
        return self.directory / "runs.jsonl"

    def install(self) -> str:
        """Writes the wrapper; returns the PATH that puts it first."""
        if REAL_PACKER is None:
            raise AssertionError("packer is not installed: run ./scripts/setup (these tests never skip)")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log.write_text("")
        wrapper = self.directory / "packer"
        wrapper.write_text(WRAPPER.format(python=sys.executable, real=REAL_PACKER, log=str(self.log)))
        wrapper.chmod(0o755)
        return f"{self.directory}:{Path(REAL_PACKER).parent}"

    def runs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]
