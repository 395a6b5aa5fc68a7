"""Pulumi.<stack>.deploy.yaml: push-to-deploy settings each stack's `pulumi deployment settings push` uploads.

The field names are those of the Pulumi CLI's own types for the file (pulumi/pulumi
sdk/go/common/apitype/deployments.go: DeploymentSettings under `settings`, see
sdk/go/common/workspace ProjectStackDeployment). The path filters are checked against the files that
really change a stack, derived from the repository.
"""

import re
import subprocess
from typing import Any

import pytest
import yaml

from tests.path_filters import file_matches, glob_regex, push_deploys
from tests.stack_config import PROJECT_DIR

STACKS = ("blue", "green")
README = (PROJECT_DIR / "README.md").read_text()

# The YAML keys of the CLI's types (yaml tags), per object of the settings file.
KNOWN_KEYS = {
    "settings": {"tag", "executorContext", "sourceContext", "gitHub", "operationContext", "agentPoolID"},
    "sourceContext": {"git"},
    "git": {"repoUrl", "branch", "repoDir", "commit", "gitAuth"},
    "gitHub": {
        "repository",
        "pullRequestTemplate",
        "deployCommits",
        "previewPullRequests",
        "deployPullRequest",
        "paths",
    },
    "operationContext": {"oidc", "preRunCommands", "environmentVariables", "options"},
    "oidc": {"aws", "azure", "gcp"},
    "aws": {"duration", "policyArns", "roleArn", "sessionName"},
    "options": {
        "skipInstallDependencies",
        "skipIntermediateDeployments",
        "shell",
        "deleteAfterDestroy",
        "remediateIfDriftDetected",
    },
}

NOT_INFLUENCING = [
    # Nothing `pulumi up` reads or runs: tests, benchmarks, documentation, CI, the IAM policies a person
    # applies, lint and test settings, the tools people run by hand (scripts/*.py).
    "tests/**",
    "bench/**",
    "**/*.md",
    ".github/**",
    ".ci/**",
    "policy/**",
    ".gitignore",
    "pyproject.toml",
    "scripts/*.py",
    # Deployment settings are uploaded with `pulumi deployment settings push`, not read by an update.
    "Pulumi.*.deploy.yaml",
]


def deploy_settings(stack: str) -> dict[str, Any]:
    return yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.deploy.yaml").read_text())


def tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True)
    return listed.stdout.split()


def influencing(stack: str) -> list[str]:
    """The tracked files whose change changes what `pulumi up` of this stack does: all but the excluded
    kinds, and but the other colors' stack files."""
    others = [f"Pulumi.{other}.yaml" for other in STACKS if other != stack]
    return [path for path in tracked_files() if not file_matches([*NOT_INFLUENCING, *others], path)]


def _unknown_keys(node: Any, name: str) -> list[str]:
    if not isinstance(node, dict) or name not in KNOWN_KEYS:
        return []
    unknown = [f"{name}.{key}" for key in node if key not in KNOWN_KEYS[name]]
    return unknown + [found for key, child in node.items() for found in _unknown_keys(child, key)]


# -- the settings files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_settings_use_only_the_fields_the_cli_reads(stack: str) -> None:
    document = deploy_settings(stack)
    assert list(document) == ["settings"]
    assert _unknown_keys(document["settings"], "settings") == []
    settings = document["settings"]
    assert set(settings["sourceContext"]["git"]) == {"branch", "repoDir"}
    assert settings["gitHub"]["deployCommits"] is True
    assert set(settings["operationContext"]["oidc"]["aws"]) == {"roleArn", "sessionName"}
    assert settings["operationContext"]["options"]["skipIntermediateDeployments"] is True


def test_the_two_stacks_settings_differ_only_in_the_color() -> None:
    blue = (PROJECT_DIR / "Pulumi.blue.deploy.yaml").read_text()
    assert re.sub(r"\bblue\b", "green", blue) == (PROJECT_DIR / "Pulumi.green.deploy.yaml").read_text()


@pytest.mark.parametrize("stack", STACKS)
def test_the_runner_installs_with_the_repositorys_own_setup(stack: str) -> None:
    """One source of truth: the pre-run command is the README's setup command, an executable in git."""
    operation = deploy_settings(stack)["settings"]["operationContext"]
    assert operation["preRunCommands"] == ["./scripts/setup"]
    assert "./scripts/setup" in README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert operation["options"]["skipInstallDependencies"] is True, "setup installs venv/, not the runner"
    mode = subprocess.run(
        ["git", "ls-files", "-s", "scripts/setup"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    )
    assert mode.stdout.startswith("100755 ")
    assert (PROJECT_DIR / "scripts" / "setup").read_text().startswith("#!/usr/bin/env bash\n")


def test_every_placeholder_is_explained_in_the_readme() -> None:
    files = [
        *PROJECT_DIR.glob("Pulumi.*.deploy.yaml"),
        *PROJECT_DIR.glob(".github/workflows/*.yml"),
        *PROJECT_DIR.glob("policy/*.json"),
    ]
    placeholders = {token for path in files for token in re.findall(r"YOUR_[A-Z_]+", path.read_text())}
    assert {"YOUR_ACCOUNT_ID", "YOUR_GITHUB_OWNER"} <= placeholders
    assert sorted(token for token in placeholders if f"`{token}`" not in README) == []


# -- path filters --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_the_path_filters_match_every_file_that_changes_the_stack(stack: str) -> None:
    paths = deploy_settings(stack)["settings"]["gitHub"]["paths"]
    files = influencing(stack)
    assert {"Pulumi.yaml", f"Pulumi.{stack}.yaml", "__main__.py", "scripts/setup", "requirements.txt"} <= set(files)
    assert any(path.startswith("image/ansible/") for path in files)
    assert [path for path in files if not file_matches(paths, path)] == []


@pytest.mark.parametrize("stack", STACKS)
def test_the_other_colors_stack_file_does_not_deploy_the_stack(stack: str) -> None:
    paths = deploy_settings(stack)["settings"]["gitHub"]["paths"]
    for other in STACKS:
        if other != stack:
            assert not push_deploys(paths, [f"Pulumi.{other}.yaml", f"Pulumi.{other}.deploy.yaml"])
    assert not push_deploys(paths, ["README.md", "tests/test_stories.py", "policy/deployer.json"])


def test_a_promotion_commit_deploys_both_stacks() -> None:
    for stack in STACKS:
        assert push_deploys(deploy_settings(stack)["settings"]["gitHub"]["paths"], ["Pulumi.yaml"])


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("infrastructure/Pulumi.dev.yaml", "infrastructure/Pulumi.dev.yaml", True),
        ("infrastructure/**", "infrastructure/a/b/c.py", True),
        ("infrastructure/**", "infrastructure", True),
        ("infrastructure/**", "other/infrastructure/a.py", False),
        ("components/*", "components/health_gate.py", True),
        ("components/*", "components/sub/x.py", False),
        ("**/*.md", "README.md", True),
        ("**/*.md", "docs/deep/page.md", True),
        ("requirements*.txt", "requirements-dev.txt", True),
        ("requirements*.txt", "sub/requirements.txt", False),
        ("Pulumi.?.yaml", "Pulumi.a.yaml", True),
        ("Pulumi.[bg]*.yaml", "Pulumi.green.yaml", True),
        ("Pulumi.[!b]*.yaml", "Pulumi.blue.yaml", False),
        ("Pulumi.{blue,green}.yaml", "Pulumi.green.yaml", True),
        ("Pulumi.{blue,green}.yaml", "Pulumi.red.yaml", False),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("Pulumi.yaml", "Pulumi.blue.yaml", False),
        ("a\\*", "a*", True),
        ("a\\*", "ab", False),
    ],
)
def test_globs_match_whole_paths_like_deployments(glob: str, path: str, matches: bool) -> None:
    assert bool(glob_regex(glob).fullmatch(path)) is matches


def test_an_exclude_filter_wins_over_an_include() -> None:
    filters = ["infrastructure/**", "!infrastructure/docs/**"]
    assert file_matches(filters, "infrastructure/main.py")
    assert not file_matches(filters, "infrastructure/docs/index.md")
    assert push_deploys(filters, ["infrastructure/docs/index.md", "infrastructure/main.py"])
    assert file_matches(["!docs/**"], "main.py"), "only excludes: everything else is included"
