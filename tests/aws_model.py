"""A stand-in for the pulumi-aws provider plugin, which cannot be downloaded here.

It does, against the moto server, what the plugin does for the resource types the program uses:
auto-naming in check, the replacement ("ForceNew") properties of each type in diff, and the AWS
calls of create, update, delete and read. It is as small as the program needs and no smaller:
each behaviour below is one the release stories depend on.
"""

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import boto3
from pulumi.output import contains_unknowns

from tests.aws_world import REGION

PROVIDER = "pulumi:providers:aws"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
GROUP = "aws:autoscaling/group:Group"
LISTENER_RULE = "aws:lb/listenerRule:ListenerRule"
CONDITION_FIELDS = {
    "hostHeader": ("host-header", "HostHeaderConfig"),
    "pathPattern": ("path-pattern", "PathPatternConfig"),
    "httpRequestMethod": ("http-request-method", "HttpRequestMethodConfig"),
    "sourceIp": ("source-ip", "SourceIpConfig"),
}


def _unique_suffix() -> str:
    """Terraform's prefixed unique ids end in 26 characters (timestamp + counter)."""
    return secrets.token_hex(13)


def _normalized(value: Any) -> Any:
    """The engine sends numbers as floats; compare 2.0 and 2 alike."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _normalized(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_normalized(item) for item in value]
    return value


def _as_set(value: Any) -> Any:
    """Lists of tags (an Auto Scaling Group's) are a set to the provider: their order is no change."""
    if isinstance(value, list) and value and all(isinstance(item, dict) and "key" in item for item in value):
        return sorted(value, key=lambda item: str(item["key"]))
    return value


def differs(old: Any, new: Any) -> bool:
    return contains_unknowns(new) or _normalized(old) != _normalized(new)


@dataclass
class AwsModel:
    """One client set against the moto endpoint; one handler per resource type."""

    endpoint: str
    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = boto3.client(service, endpoint_url=self.endpoint, region_name=REGION)
        return self.clients[service]

    def handles(self, type_: str) -> bool:
        return type_ in (PROVIDER, TARGET_GROUP, LAUNCH_TEMPLATE, GROUP, LISTENER_RULE)

    # -- check: defaults the provider fills in before diff ------------------------------------------------

    def check(self, type_: str, name: str, olds: dict[str, Any] | None, news: dict[str, Any]) -> dict[str, Any]:
        news = dict(news)
        if type_ == TARGET_GROUP and "name" not in news and "namePrefix" not in news:
            # Pulumi's auto-name: the resource name and 7 random characters, kept for the resource's life.
            news["name"] = (olds or {}).get("name") or f"{name}-{secrets.token_hex(4)[:7]}"
        return news

    # -- diff ---------------------------------------------------------------------------------------------

    REPLACING: ClassVar[dict[str, tuple[str, ...]]] = {
        TARGET_GROUP: ("name", "namePrefix", "port", "protocol", "vpcId", "targetType"),
        LAUNCH_TEMPLATE: ("name", "namePrefix"),
        GROUP: ("name", "namePrefix"),
        LISTENER_RULE: ("listenerArn",),
        PROVIDER: (),
    }
    # Outputs a preview cannot know after an update that changes these inputs.
    RECOMPUTED: ClassVar[dict[str, tuple[str, ...]]] = {LAUNCH_TEMPLATE: ("latestVersion", "defaultVersion")}

    def diff(
        self,
        type_: str,
        old_inputs: dict[str, Any],
        olds: dict[str, Any],
        news: dict[str, Any],
        ignore: list[str],
        replace_on: list[str],
    ) -> tuple[list[str], list[str]]:
        """(changed properties, those that force a replacement): new inputs against the old state."""
        changed = [key for key in news if key not in ignore and differs(_as_set(olds.get(key)), _as_set(news[key]))]
        changed += [key for key in old_inputs if key not in news and key not in ignore]
        replaces = [key for key in changed if key in self.REPLACING[type_] or key in replace_on]
        return changed, replaces

    def preview_outputs(self, type_: str, olds: dict[str, Any] | None, news: dict[str, Any]) -> dict[str, Any]:
        """What a preview knows of the outputs: the inputs, and for an update the old outputs it cannot change."""
        if olds is None:
            return dict(news)
        kept = {key: value for key, value in olds.items() if key not in self.RECOMPUTED.get(type_, ())}
        return {**kept, **news}

    # -- create / update / delete / read ------------------------------------------------------------------

    def create(self, type_: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        create: Callable[[dict[str, Any]], tuple[str, dict[str, Any]]] = {
            PROVIDER: lambda p: (secrets.token_hex(8), dict(p)),
            TARGET_GROUP: self._create_target_group,
            LAUNCH_TEMPLATE: self._create_launch_template,
            GROUP: self._create_group,
            LISTENER_RULE: self._create_listener_rule,
        }[type_]
        return create(props)

    def update(
        self, type_: str, id_: str, olds: dict[str, Any], news: dict[str, Any], ignore: list[str]
    ) -> dict[str, Any]:
        changed = [key for key in news if key not in ignore and differs(olds.get(key), news[key])]
        if type_ == TARGET_GROUP:
            self._update_target_group(id_, news, changed)
        elif type_ == LAUNCH_TEMPLATE:
            return self._update_launch_template(id_, olds, news, changed)
        elif type_ == GROUP:
            self._update_group(id_, olds, news, changed)
        elif type_ == LISTENER_RULE:
            self._update_listener_rule(id_, news, changed)
        kept = {key: olds[key] for key in ignore if key in olds}
        return {**olds, **news, **kept}

    def delete(self, type_: str, id_: str, props: dict[str, Any]) -> None:
        if type_ == TARGET_GROUP:
            self.client("elbv2").delete_target_group(TargetGroupArn=id_)
        elif type_ == LAUNCH_TEMPLATE:
            self.client("ec2").delete_launch_template(LaunchTemplateId=id_)
        elif type_ == GROUP:
            self.client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName=id_, ForceDelete=True)
        elif type_ == LISTENER_RULE:
            self.client("elbv2").delete_rule(RuleArn=id_)

    def read(self, type_: str, id_: str, props: dict[str, Any]) -> dict[str, Any] | None:
        """The outputs refreshed from AWS, or None when the resource is gone."""
        if type_ == LAUNCH_TEMPLATE:
            templates = self.client("ec2").describe_launch_templates(LaunchTemplateIds=[id_])["LaunchTemplates"]
            latest = templates[0]
            return {
                **props,
                "latestVersion": latest["LatestVersionNumber"],
                "defaultVersion": latest["DefaultVersionNumber"],
            }
        if type_ != GROUP:
            return props
        groups = self.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[id_])
        if not groups["AutoScalingGroups"]:
            return None
        group = groups["AutoScalingGroups"][0]
        tags = [
            {"key": tag["Key"], "value": tag["Value"], "propagateAtLaunch": tag["PropagateAtLaunch"]}
            for tag in group.get("Tags", [])
        ]
        return {
            **props,
            "minSize": group["MinSize"],
            "maxSize": group["MaxSize"],
            "desiredCapacity": group["DesiredCapacity"],
            "tags": tags,
        }

    # -- target groups ------------------------------------------------------------------------------------

    @staticmethod
    def _tags(tags: dict[str, str] | None) -> list[dict[str, str]]:
        return [{"Key": key, "Value": value} for key, value in (tags or {}).items()]

    def _create_target_group(self, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        check = props.get("healthCheck") or {}
        created = self.client("elbv2").create_target_group(
            Name=props["name"],
            Port=int(props["port"]),
            Protocol=props["protocol"],
            VpcId=props["vpcId"],
            TargetType=props.get("targetType", "instance"),
            HealthCheckPath=check.get("path", "/"),
            HealthCheckProtocol=check.get("protocol", "HTTP"),
            HealthCheckIntervalSeconds=int(check.get("interval", 30)),
            HealthyThresholdCount=int(check.get("healthyThreshold", 3)),
            UnhealthyThresholdCount=int(check.get("unhealthyThreshold", 3)),
            Tags=self._tags(props.get("tags")),
        )["TargetGroups"][0]
        arn = created["TargetGroupArn"]
        self._target_group_attributes(arn, props)
        return arn, {**props, "arn": arn, "arnSuffix": arn.split(":")[-1]}

    def _target_group_attributes(self, arn: str, props: dict[str, Any]) -> None:
        delay = str(int(props.get("deregistrationDelay", 300)))
        self.client("elbv2").modify_target_group_attributes(
            TargetGroupArn=arn, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": delay}]
        )

    def _update_target_group(self, arn: str, props: dict[str, Any], changed: list[str]) -> None:
        elbv2 = self.client("elbv2")
        if "healthCheck" in changed:
            check = props["healthCheck"]
            elbv2.modify_target_group(
                TargetGroupArn=arn,
                HealthCheckPath=check["path"],
                HealthCheckIntervalSeconds=int(check["interval"]),
                HealthyThresholdCount=int(check["healthyThreshold"]),
                UnhealthyThresholdCount=int(check["unhealthyThreshold"]),
            )
        if "deregistrationDelay" in changed:
            self._target_group_attributes(arn, props)
        if "tags" in changed:
            elbv2.add_tags(ResourceArns=[arn], Tags=self._tags(props["tags"]))

    # -- launch templates ---------------------------------------------------------------------------------

    @staticmethod
    def _template_data(props: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ImageId": props["imageId"],
            "InstanceType": props["instanceType"],
            "SecurityGroupIds": list(props.get("vpcSecurityGroupIds") or []),
            "IamInstanceProfile": {"Name": (props.get("iamInstanceProfile") or {}).get("name", "")},
            "TagSpecifications": [
                {"ResourceType": spec["resourceType"], "Tags": AwsModel._tags(spec.get("tags"))}
                for spec in props.get("tagSpecifications") or []
            ],
        }
        if props.get("keyName"):
            data["KeyName"] = props["keyName"]
        return data

    def _create_launch_template(self, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        name = props.get("name") or props["namePrefix"] + _unique_suffix()
        template = self.client("ec2").create_launch_template(
            LaunchTemplateName=name,
            LaunchTemplateData=self._template_data(props),
            TagSpecifications=[{"ResourceType": "launch-template", "Tags": self._tags(props.get("tags"))}],
        )["LaunchTemplate"]
        outputs = {**props, "name": name, "arn": f"arn:aws:ec2:{REGION}:123456789012:launch-template/{name}"}
        return template["LaunchTemplateId"], {**outputs, "latestVersion": 1, "defaultVersion": 1}

    def _update_launch_template(
        self, id_: str, olds: dict[str, Any], news: dict[str, Any], changed: list[str]
    ) -> dict[str, Any]:
        outputs = {**olds, **news}
        if set(changed) - {"tags"}:
            ec2 = self.client("ec2")
            version = ec2.create_launch_template_version(
                LaunchTemplateId=id_, LaunchTemplateData=self._template_data(news)
            )["LaunchTemplateVersion"]["VersionNumber"]
            outputs["latestVersion"] = version
            if news.get("updateDefaultVersion"):
                ec2.modify_launch_template(LaunchTemplateId=id_, DefaultVersion=str(version))
                outputs["defaultVersion"] = version
        return outputs

    # -- auto scaling groups ------------------------------------------------------------------------------

    @staticmethod
    def _group_tags(name: str, props: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {
                "ResourceId": name,
                "ResourceType": "auto-scaling-group",
                "Key": tag["key"],
                "Value": tag["value"],
                "PropagateAtLaunch": bool(tag.get("propagateAtLaunch")),
            }
            for tag in props.get("tags") or []
        ]

    def _create_group(self, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        name = props.get("name") or props["namePrefix"] + _unique_suffix()
        template = props["launchTemplate"]
        self.client("autoscaling").create_auto_scaling_group(
            AutoScalingGroupName=name,
            MinSize=int(props["minSize"]),
            MaxSize=int(props["maxSize"]),
            DesiredCapacity=int(props["desiredCapacity"]),
            LaunchTemplate={"LaunchTemplateId": template["id"], "Version": template["version"]},
            VPCZoneIdentifier=",".join(props["vpcZoneIdentifiers"]),
            TargetGroupARNs=list(props.get("targetGroupArns") or []),
            HealthCheckType=props.get("healthCheckType", "EC2"),
            HealthCheckGracePeriod=int(props.get("healthCheckGracePeriod", 300)),
            Tags=self._group_tags(name, props),
        )
        return name, {**props, "name": name, "arn": f"arn:aws:autoscaling:{REGION}:123456789012:group/{name}"}

    def _update_group(self, name: str, olds: dict[str, Any], news: dict[str, Any], changed: list[str]) -> None:
        autoscaling = self.client("autoscaling")
        fields = {
            "minSize": ("MinSize", int),
            "maxSize": ("MaxSize", int),
            "desiredCapacity": ("DesiredCapacity", int),
            "healthCheckGracePeriod": ("HealthCheckGracePeriod", int),
            "healthCheckType": ("HealthCheckType", str),
            "vpcZoneIdentifiers": ("VPCZoneIdentifier", ",".join),
        }
        update = {api: convert(news[prop]) for prop, (api, convert) in fields.items() if prop in changed}
        if "launchTemplate" in changed:
            template = news["launchTemplate"]
            update["LaunchTemplate"] = {"LaunchTemplateId": template["id"], "Version": template["version"]}
        if update:
            autoscaling.update_auto_scaling_group(AutoScalingGroupName=name, **update)
        if "targetGroupArns" in changed:
            old, new = set(olds.get("targetGroupArns") or []), set(news.get("targetGroupArns") or [])
            if new - old:
                autoscaling.attach_load_balancer_target_groups(
                    AutoScalingGroupName=name, TargetGroupARNs=sorted(new - old)
                )
            if old - new:
                autoscaling.detach_load_balancer_target_groups(
                    AutoScalingGroupName=name, TargetGroupARNs=sorted(old - new)
                )
        if "tags" in changed:
            autoscaling.create_or_update_tags(Tags=self._group_tags(name, news))

    # -- listener rules -----------------------------------------------------------------------------------

    @staticmethod
    def _conditions(props: dict[str, Any]) -> list[dict[str, Any]]:
        conditions = []
        for condition in props.get("conditions") or []:
            for argument, value in condition.items():
                if argument in CONDITION_FIELDS:
                    field, config = CONDITION_FIELDS[argument]
                    conditions.append({"Field": field, config: {"Values": value["values"]}})
                elif argument == "httpHeader":
                    config = {"HttpHeaderName": value["httpHeaderName"], "Values": value["values"]}
                    conditions.append({"Field": "http-header", "HttpHeaderConfig": config})
                elif argument == "queryStrings":
                    pairs = [{"Key": pair.get("key"), "Value": pair["value"]} for pair in value]
                    conditions.append({"Field": "query-string", "QueryStringConfig": {"Values": pairs}})
        return conditions

    @staticmethod
    def _actions(props: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"Type": action["type"], "TargetGroupArn": action["targetGroupArn"]} for action in props["actions"]]

    def _create_listener_rule(self, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        rule = self.client("elbv2").create_rule(
            ListenerArn=props["listenerArn"],
            Priority=int(props["priority"]),
            Conditions=self._conditions(props),
            Actions=self._actions(props),
            Tags=self._tags(props.get("tags")),
        )["Rules"][0]
        return rule["RuleArn"], {**props, "arn": rule["RuleArn"]}

    def _update_listener_rule(self, arn: str, props: dict[str, Any], changed: list[str]) -> None:
        elbv2 = self.client("elbv2")
        if {"conditions", "actions"} & set(changed):
            elbv2.modify_rule(RuleArn=arn, Conditions=self._conditions(props), Actions=self._actions(props))
        if "priority" in changed:
            elbv2.set_rule_priorities(RulePriorities=[{"RuleArn": arn, "Priority": int(props["priority"])}])
        if "tags" in changed:
            elbv2.add_tags(ResourceArns=[arn], Tags=self._tags(props["tags"]))
