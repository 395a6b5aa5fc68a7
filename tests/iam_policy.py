"""Just enough of IAM's policy evaluation to ask "does this policy let that call through?".

moto accepts every call, so the tests record what the program, its providers and Packer call and ask
the policy about each one here. One identity-based policy is evaluated: an explicit Deny wins over an
Allow, and no matching Allow is an implicit deny. Actions match `Action`/`NotAction` patterns with
IAM's `*` and `?` wildcards, case-insensitively.

Two simplifications, both on the permissive side of what AWS decides:
- A recorded call carries no resource ARN, so `Resource`/`NotResource` are not compared unless a
  resource is given: a statement that allows an action on some resource counts.
- Conditions are not evaluated: an Allow with a `Condition` counts as allowing (the call is allowed
  when its condition holds, e.g. the AMI carries this project's tag), and a Deny with a `Condition`
  counts as not denying.
So a policy that passes here may still refuse a call on a resource or condition it excludes by
design; one that fails here refuses the call for certain.
"""

import re
from functools import cache
from typing import Any

from tests.call_recorder import Call

SIGNING_NAME_TO_IAM_PREFIX = {"monitoring": "cloudwatch"}
"""SigV4 signing names that differ from the service's IAM action prefix (CloudWatch signs as `monitoring`)."""


def iam_action(call: Call) -> str:
    """The IAM action a recorded API call needs: `ec2:DescribeImages`, `cloudwatch:DescribeAlarms`."""
    return f"{SIGNING_NAME_TO_IAM_PREFIX.get(call.service, call.service)}:{call.operation}"


@cache
def _pattern(glob: str) -> re.Pattern[str]:
    """IAM's wildcards: `*` any run of characters (`:` and `/` included), `?` one character."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob), re.IGNORECASE)


def listed(value: str | list[str] | None) -> list[str]:
    """A policy field that holds one string or a list of them."""
    return [value] if isinstance(value, str) else list(value or [])


def _matches_any(patterns: list[str], value: str) -> bool:
    return any(_pattern(pattern).fullmatch(value) for pattern in patterns)


def _applies(statement: dict[str, Any], action: str, resource: str | None) -> bool:
    if "NotAction" in statement:
        action_matches = not _matches_any(listed(statement["NotAction"]), action)
    else:
        action_matches = _matches_any(listed(statement.get("Action")), action)
    if not action_matches or resource is None:
        return action_matches
    if "NotResource" in statement:
        return not _matches_any(listed(statement["NotResource"]), resource)
    return _matches_any(listed(statement.get("Resource")), resource)


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    found = policy["Statement"]
    return [found] if isinstance(found, dict) else list(found)


def allows(policy: dict[str, Any], action: str, resource: str | None = None) -> bool:
    """Whether the policy allows the action (on the resource, if given), read as the module docstring says."""
    applying = [statement for statement in statements(policy) if _applies(statement, action, resource)]
    if any(statement["Effect"] == "Deny" and "Condition" not in statement for statement in applying):
        return False
    return any(statement["Effect"] == "Allow" for statement in applying)


def refused(policy: dict[str, Any], calls: list[Call]) -> list[str]:
    """The IAM actions of the calls that the policy does not allow, sorted, each once."""
    return sorted({action for action in map(iam_action, calls) if not allows(policy, action)})
