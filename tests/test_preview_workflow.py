""".github/workflows/preview.yml: a valid GitHub Actions workflow (check-jsonschema's vendored schema, offline)
that previews exactly the repository's stacks, installed with the README's setup command, and comments."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.stack_config import PROJECT_DIR, project_file

WORKFLOW = PROJECT_DIR / ".github" / "workflows" / "preview.yml"
README = (PROJECT_DIR / "README.md").read_text()


def workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def steps() -> list[dict[str, Any]]:
    return workflow()["jobs"]["preview"]["steps"]


def step(action: str) -> dict[str, Any]:
    [found] = [step for step in steps() if step.get("uses", "").split("@")[0] == action]
    return found


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    """The venv's own check-jsonschema entry point, with the schema it vendors: no download."""
    executable = Path(sys.executable).parent / "check-jsonschema"
    argv = [str(executable), "--builtin-schema", "vendor.github-workflows", str(path)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_the_workflow_is_valid_for_github_actions() -> None:
    checked = check_jsonschema(WORKFLOW)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_schema_check_refuses_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "runs_on:"))
    assert check_jsonschema(broken).returncode == 1


def test_the_matrix_names_exactly_the_stacks_with_a_stack_file() -> None:
    stacks = {
        path.name.split(".")[1] for path in PROJECT_DIR.glob("Pulumi.*.yaml") if not path.name.endswith(".deploy.yaml")
    }
    assert stacks == {"blue", "green"}
    matrix = workflow()["jobs"]["preview"]["strategy"]["matrix"]["stack"]
    assert sorted(matrix) == sorted(stacks)


def test_it_runs_on_pull_requests_and_installs_with_the_readme_setup_command() -> None:
    assert "pull_request" in workflow()[True]  # YAML 1.1 reads the key `on` as True
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    setup = next(step["run"] for step in steps() if "run" in step)
    assert setup == "./scripts/setup" and setup in quick_start
    order = [step.get("uses", "").split("@")[0] or step["run"] for step in steps()]
    assert order.index("actions/checkout") < order.index("./scripts/setup") < order.index("pulumi/actions")


def test_pulumi_previews_each_stack_and_comments_on_the_pr() -> None:
    pulumi = step("pulumi/actions")
    assert pulumi["uses"] == "pulumi/actions@v7"
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["stack-name"].endswith("/${{ matrix.stack }}")
    assert pulumi["with"]["comment-on-pr"] is True
    assert pulumi["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"


def test_aws_credentials_come_from_oidc_in_the_stacks_region() -> None:
    assert workflow()["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}
    aws = step("aws-actions/configure-aws-credentials")["with"]
    assert aws["role-to-assume"].endswith(":role/bluegreen-previewer")
    assert "aws-access-key-id" not in aws
    assert aws["aws-region"] == project_file()["config"]["aws:region"]
