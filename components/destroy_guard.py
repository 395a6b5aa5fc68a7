"""DestroyGuard: refuses to let a destroy take the color that serves traffic (P3).

`pulumi destroy` does not run the program, so this check lives in a resource. It depends on the
color's group and target groups, so a destroy deletes it first; its delete reads the rules in AWS
and refuses while any forwards to this color. (The serving color's resources are also `protect`ed,
which the engine enforces for any target set.)
"""

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import Resource

from components.aws import AwsTarget
from components.dynamic import BluegreenProvider
from components.live_state import RuleMissing, read_rules
from components.release_plan import LiveColorChange, other_color

INPUTS = ("app_name", "color", "rule_arns")


@dataclass(frozen=True, kw_only=True)
class DestroyGuardArgs:
    target: AwsTarget
    app_name: str
    color: str
    rule_arns: dict[str, str]

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> "DestroyGuardArgs":
        return cls(
            target=AwsTarget.from_props(props),
            app_name=props["app_name"],
            color=props["color"],
            rule_arns=dict(props["rule_arns"]),
        )

    def props(self) -> dict[str, Any]:
        return {**self.target.props(), "app_name": self.app_name, "color": self.color, "rule_arns": self.rule_arns}


class DestroyGuardProvider(BluegreenProvider):
    intent = INPUTS

    def resource_id(self, props: dict[str, Any]) -> str:
        return f"destroy-guard-{props['color']}"

    def apply(self, props: dict[str, Any]) -> dict[str, Any]:
        return {}

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        args = DestroyGuardArgs.from_props(props)
        rule_arns = dict(args.rule_arns)
        while True:
            try:
                rules = read_rules(args.target, args.app_name, rule_arns)
                break
            except RuleMissing as missing:
                rule_arns.pop(missing.route)  # a rule deleted since sends no traffic anywhere
        serving = sorted(route for route, rule in rules.items() if args.color in rule.colors)
        if serving:
            other = other_color(args.color)
            raise LiveColorChange(
                f"{args.color} still serves {', '.join(serving)}; refusing to destroy it. Promote {other} first "
                f"(active_color: {other} in Pulumi.yaml, then `pulumi up` the {other} stack), then destroy {args.color}"
            )


class DestroyGuard(Resource, module="bluegreen", name="DestroyGuard"):
    """Deleted before the color's group and target groups; refuses while the color serves traffic."""

    def __init__(self, name: str, args: DestroyGuardArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(DestroyGuardProvider(), name, args.props(), opts)
