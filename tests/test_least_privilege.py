"""policy/deployer.json lets `pulumi up` (and refresh, destroy) through, policy/previewer.json lets previews
through, and neither grants more than that: parliament lints both, and every AWS call of a whole release
story against moto (the program, the providers, the pulumi-aws stand-in and the real Packer) is checked
against them with tests/iam_policy.py."""

import json
import re
import time
from pathlib import Path
from typing import Any

import botocore.session
import parliament
import pytest
from botocore import xform_name

from components.aws_provider import SERVICES
from tests.aws_world import DRAIN_SECONDS
from tests.call_recorder import Call, CallRecorder
from tests.engine import Engine
from tests.iam_policy import allows, iam_action, listed, refused, statements
from tests.project import Project
from tests.stack_config import PROJECT_DIR

POLICY_DIR = PROJECT_DIR / "policy"
READ_ONLY_PREFIXES = ("Describe", "Get", "List")

ACCEPTED_FINDINGS = {
    # Parliament's table lists both the ALB (`listener-rule/app/...`) and the NLB (`listener-rule/net/...`)
    # formats as required for the rule actions; AWS needs either one. The production and test rules are
    # ALB rules, so the NLB format is left out on purpose.
    ("deployer.json", "RESOURCE_MISMATCH", "elasticloadbalancing:ModifyRule"),
    ("deployer.json", "RESOURCE_MISMATCH", "elasticloadbalancing:DeleteRule"),
    ("deployer.json", "RESOURCE_MISMATCH", "elasticloadbalancing:SetRulePriorities"),
    ("deployer.json", "RESOURCE_MISMATCH", "elasticloadbalancing:CreateRule"),
}


def policy(name: str) -> dict[str, Any]:
    return json.loads((POLICY_DIR / name).read_text())


def findings(name: str) -> set[tuple[str, str, str]]:
    """(file, issue, action or detail) for each of parliament's findings on the policy file."""
    found = set()
    for finding in parliament.analyze_policy_string((POLICY_DIR / name).read_text()).findings:
        details = finding.detail if isinstance(finding.detail, list) else [finding.detail]
        for detail in details:
            subject = detail.get("action", json.dumps(detail)) if isinstance(detail, dict) else str(detail)
            found.add((name, finding.issue, subject))
    return found


# -- lint ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["deployer.json", "previewer.json"])
def test_parliament_finds_nothing_but_the_accepted_exceptions(name: str) -> None:
    assert findings(name) - ACCEPTED_FINDINGS == set()


def test_every_accepted_parliament_exception_is_still_needed() -> None:
    assert ACCEPTED_FINDINGS <= findings("deployer.json") | findings("previewer.json")


def test_parliament_would_catch_a_misspelt_action() -> None:
    """The lint is live: a typo in an action name is a finding, not silence."""
    text = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:DescribeImagez", "Resource": "*"}]}
    )
    assert "UNKNOWN_ACTION" in {finding.issue for finding in parliament.analyze_policy_string(text).findings}


# -- the evaluator ------------------------------------------------------------------------------------------


def _document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_actions_match_with_wildcards_case_insensitively() -> None:
    document = _document(
        {"Effect": "Allow", "Action": ["ec2:Describe*", "elasticloadbalancing:?odifyRule"], "Resource": "*"}
    )
    assert allows(document, "ec2:DescribeImages")
    assert allows(document, "EC2:describeinstances")
    assert allows(document, "elasticloadbalancing:ModifyRule")
    assert not allows(document, "ec2:RunInstances")
    assert not allows(document, "autoscaling:DescribeAutoScalingGroups")


def test_an_explicit_deny_wins_and_not_action_excludes() -> None:
    document = _document(
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ec2:TerminateInstances", "Resource": "*"},
    )
    assert allows(document, "ec2:RunInstances")
    assert not allows(document, "ec2:TerminateInstances")
    assert not allows(document, "iam:PassRole")


def test_conditions_count_as_met_for_allows_and_unmet_for_denies() -> None:
    document = _document(
        {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*", "Condition": {"StringEquals": {"a": "b"}}},
        {"Effect": "Deny", "Action": "ec2:DeregisterImage", "Resource": "*", "Condition": {"StringEquals": {"a": "b"}}},
    )
    assert allows(document, "iam:PassRole")
    assert allows(document, "ec2:DeregisterImage")


def test_resources_are_compared_when_given() -> None:
    document = _document({"Effect": "Allow", "Action": "ec2:DeleteSnapshot", "Resource": "arn:aws:ec2:*::snapshot/*"})
    assert allows(document, "ec2:DeleteSnapshot")
    assert allows(document, "ec2:DeleteSnapshot", "arn:aws:ec2:ap-northeast-1::snapshot/snap-1")
    assert not allows(document, "ec2:DeleteSnapshot", "arn:aws:ec2:ap-northeast-1:123456789012:volume/vol-1")


def test_recorded_calls_map_to_iam_actions() -> None:
    assert iam_action(Call("ec2", "DescribeImages", "testing")) == "ec2:DescribeImages"
    assert iam_action(Call("elasticloadbalancing", "ModifyRule", "testing")) == "elasticloadbalancing:ModifyRule"
    assert iam_action(Call("monitoring", "DescribeAlarms", "testing")) == "cloudwatch:DescribeAlarms"


# -- what the policies grant --------------------------------------------------------------------------------


def test_the_previewer_grants_reads_only() -> None:
    actions = [action for statement in statements(policy("previewer.json")) for action in listed(statement["Action"])]
    assert actions
    assert [action for action in actions if not action.split(":")[1].startswith(READ_ONLY_PREFIXES)] == []
    assert all(
        statement["Effect"] == "Allow" and "NotAction" not in statement
        for statement in statements(policy("previewer.json"))
    )


@pytest.mark.parametrize(
    ("action", "key"),
    [
        ("ec2:DeregisterImage", "aws:ResourceTag/managed-by"),
        ("ec2:DeleteSnapshot", "aws:ResourceTag/managed-by"),
        ("ec2:TerminateInstances", "aws:ResourceTag/managed-by"),
        ("ec2:StopInstances", "aws:ResourceTag/managed-by"),
        ("elasticloadbalancing:DeleteRule", "aws:ResourceTag/bluegreen:test-route"),
        ("iam:PassRole", "iam:PassedToService"),
    ],
)
def test_deletes_terminations_and_role_passing_are_conditioned(action: str, key: str) -> None:
    """Every statement that grants these carries a condition on the project's tags (or where the role goes)."""
    granting = [s for s in statements(policy("deployer.json")) if allows({"Statement": [s]}, action)]
    assert granting
    for statement in granting:
        assert any(key in keys for keys in statement.get("Condition", {}).values()), statement["Sid"]


def _operations_named_in(directory: Path) -> set[str]:
    """snake_case names of AWS operations called in the modules of a directory (`describe_rules(`, paginators)."""
    source = "\n".join(path.read_text() for path in sorted(directory.glob("*.py")))
    return set(re.findall(r"\.([a-z0-9]+(?:_[a-z0-9]+)+)\(", source)) | set(
        re.findall(r'get_paginator\("(\w+)"\)', source)
    )


def test_every_aws_operation_the_components_name_is_allowed_to_the_deployer() -> None:
    """Catches calls a story does not reach (a restore after a failed switch, a snapshot delete)."""
    session = botocore.session.get_session()
    candidates: dict[str, list[str]] = {}
    for service in SERVICES:
        model = session.get_service_model(service)
        for operation in model.operation_names:
            action = iam_action(Call(model.signing_name, operation, ""))
            candidates.setdefault(xform_name(operation), []).append(action)
    named = _operations_named_in(PROJECT_DIR / "components") & set(candidates)
    assert {"describe_rules", "modify_rule", "deregister_image", "describe_target_health"} <= named
    deployer = policy("deployer.json")
    assert sorted(name for name in named if not any(allows(deployer, a) for a in candidates[name])) == []


# -- a whole release story, recorded ------------------------------------------------------------------------


def test_a_release_story_needs_only_the_deployer_and_its_previews_only_the_previewer(
    engine: Engine, project: Project, api_calls: CallRecorder
) -> None:
    """First release of blue (a Packer bake), green deployed, promoted, rolled back, previews of both stacks
    (first ones, a promotion, one with a refresh), blue scaled to idle and back, green destroyed."""
    every_call: list[Call] = []
    preview_calls: list[Call] = []

    def recorded() -> list[Call]:
        calls = list(api_calls.calls)
        api_calls.clear()
        every_call.extend(calls)
        return calls

    def preview(stack: str, refresh: bool = False) -> None:
        recorded()
        if refresh:
            engine.refresh(stack)  # `pulumi preview --refresh`: the refresh's reads are the preview's
        engine.preview(stack)
        preview_calls.extend(recorded())

    project.set("blue", "idle_capacity", "0")
    preview("blue")
    engine.up("blue")
    preview("green")
    engine.up("green")
    project.promote("green")
    preview("green")
    preview("blue")
    engine.up("green")
    time.sleep(DRAIN_SECONDS + 0.2)
    engine.up("blue")  # demoted and drained: down to idle capacity
    project.promote("blue")
    engine.up("blue")  # rollback: back to live capacity, verified, then the rules move
    preview("green", refresh=True)
    time.sleep(DRAIN_SECONDS + 0.2)
    engine.up("green")
    engine.destroy("green")
    recorded()

    done = {iam_action(call) for call in every_call}
    story = {"ec2:CreateImage", "ec2:RunInstances", "elasticloadbalancing:ModifyRule", "ec2:DeregisterImage"}
    assert story | {"autoscaling:UpdateAutoScalingGroup", "autoscaling:DeleteAutoScalingGroup"} <= done
    assert refused(policy("deployer.json"), every_call) == []
    assert {"elasticloadbalancing:DescribeRules", "ec2:DescribeImages"} <= {iam_action(c) for c in preview_calls}
    assert refused(policy("previewer.json"), preview_calls) == []
