"""Builds, on the moto server, what the program expects to exist and what it creates.

A shared ALB with one listener rule per route (the platform team's), and for each color
the resources a BlueGreenEnvironment would own: tagged target groups, a launch template
and an Auto Scaling Group.
"""

from dataclasses import dataclass, field
from typing import Any

import boto3

from tests.call_recorder import WORLD_ACCESS_KEY

REGION = "ap-northeast-1"
APP = "app"
ROUTES = ("web", "api")
DRAIN_SECONDS = 1
"""The routes' deregistration delay in the stories: short, so a story can wait for a drain."""


@dataclass
class ColorEnvironment:
    color: str
    version: str
    ami_id: str
    asg_name: str
    launch_template_id: str
    target_group_arns: dict[str, str]


@dataclass
class World:
    endpoint: str
    rule_arns: dict[str, str] = field(default_factory=dict)
    vpc_id: str = ""
    subnet_ids: list[str] = field(default_factory=list)
    security_group_id: str = ""
    instance_profile: str = "app-instance"
    listener_arn: str = ""
    original_target_group: str = ""

    def client(self, service: str) -> Any:
        """The test's own clients, signed with a key of their own so that call recording leaves them out."""
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=WORLD_ACCESS_KEY,
            aws_secret_access_key=WORLD_ACCESS_KEY,
        )

    def props(self) -> dict[str, Any]:
        return {"region": REGION, "endpoint_url": self.endpoint}

    def project_config(self) -> dict[str, Any]:
        """The shared settings a team writes into Pulumi.yaml, naming this world's load balancer and network."""
        return {
            "aws:region": REGION,
            "endpoint_url": self.endpoint,
            "vpc_id": self.vpc_id,
            "subnet_ids": self.subnet_ids,
            "security_group_ids": [self.security_group_id],
            "instance_profile": self.instance_profile,
            "routes": {
                route: {"rule_arn": arn, "port": 8080 + index, "deregistration_delay": DRAIN_SECONDS}
                for index, (route, arn) in enumerate(self.rule_arns.items())
            },
            "gate_timeout_seconds": 3,
            "gate_poll_seconds": 1,
            "build_timeout_seconds": 120,
        }

    def amazon_linux_amis(self) -> list[str]:
        images = self.client("ec2").describe_images(
            Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-hvm-*-x86_64-gp2"]}]
        )["Images"]
        return sorted(image["ImageId"] for image in images)

    def build_load_balancer(self, routes: tuple[str, ...] = ROUTES) -> None:
        """VPC, ALB, listener, and one rule per route forwarding to a pre-existing target group."""
        ec2, elbv2 = self.client("ec2"), self.client("elbv2")
        self.vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnet_ids = [
            ec2.create_subnet(VpcId=self.vpc_id, CidrBlock=f"10.0.{n}.0/24", AvailabilityZone=f"{REGION}{zone}")[
                "Subnet"
            ]["SubnetId"]
            for n, zone in ((1, "a"), (2, "c"))
        ]
        self.security_group_id = ec2.create_security_group(
            GroupName="app", Description="application instances", VpcId=self.vpc_id
        )["GroupId"]
        self.client("iam").create_instance_profile(InstanceProfileName=self.instance_profile)
        balancer = elbv2.create_load_balancer(Name="prod", Subnets=self.subnet_ids)["LoadBalancers"][0]
        original = self._target_group("original", tags={})
        listener = elbv2.create_listener(
            LoadBalancerArn=balancer["LoadBalancerArn"],
            Protocol="HTTP",
            Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": original}],
        )["Listeners"][0]
        self.listener_arn, self.original_target_group = listener["ListenerArn"], original
        for route in routes:
            self.add_route(route)

    def default_security_group(self) -> str:
        """The default VPC's security group: the build instance's, as the program always names one."""
        groups = self.client("ec2").describe_security_groups(GroupNames=["default"])["SecurityGroups"]
        return groups[0]["GroupId"]

    def create_alarm(self, name: str) -> None:
        """A CloudWatch alarm on the load balancer's 5xx count, in state INSUFFICIENT_DATA."""
        self.client("cloudwatch").put_metric_alarm(
            AlarmName=name,
            MetricName="HTTPCode_Target_5XX_Count",
            Namespace="AWS/ApplicationELB",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=10,
            ComparisonOperator="GreaterThanThreshold",
        )

    def add_route(self, route: str) -> None:
        """One more production rule, forwarding to the platform team's original target group."""
        rule = self.client("elbv2").create_rule(
            ListenerArn=self.listener_arn,
            Priority=10 + len(self.rule_arns),
            Conditions=[{"Field": "path-pattern", "Values": [f"/{route}/*"]}],
            Actions=[{"Type": "forward", "TargetGroupArn": self.original_target_group}],
        )["Rules"][0]
        self.rule_arns[route] = rule["RuleArn"]

    def _target_group(self, name: str, tags: dict[str, str]) -> str:
        extra = {"Tags": [{"Key": key, "Value": value} for key, value in tags.items()]} if tags else {}
        created = self.client("elbv2").create_target_group(
            Name=name, Protocol="HTTP", Port=8080, VpcId=self.vpc_id, **extra
        )
        return created["TargetGroups"][0]["TargetGroupArn"]

    def build_color(
        self, color: str, version: str = "1.0.0", instances: int = 2, ami_id: str | None = None
    ) -> ColorEnvironment:
        """What BlueGreenEnvironment creates for a color: tagged target groups, template, ASG."""
        ami = ami_id or self.amazon_linux_amis()[0]
        groups = {
            route: self._target_group(f"{APP}-{color}-{route}", {"app": APP, "color": color, "route": route})
            for route in self.rule_arns
        }
        template = self.client("ec2").create_launch_template(
            LaunchTemplateName=f"{APP}-{color}-{version}",
            LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.micro"},
        )["LaunchTemplate"]
        asg_name = f"{APP}-{color}-{version}"
        self.client("autoscaling").create_auto_scaling_group(
            AutoScalingGroupName=asg_name,
            MinSize=instances,
            MaxSize=max(instances, 1) * 2,
            DesiredCapacity=instances,
            LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "1"},
            VPCZoneIdentifier=",".join(self.subnet_ids),
            TargetGroupARNs=list(groups.values()),
            HealthCheckType="ELB",
        )
        return ColorEnvironment(color, version, ami, asg_name, template["LaunchTemplateId"], groups)

    def point_rules_at(self, environment: ColorEnvironment) -> None:
        for route, rule_arn in self.rule_arns.items():
            self.client("elbv2").modify_rule(
                RuleArn=rule_arn, Actions=[{"Type": "forward", "TargetGroupArn": environment.target_group_arns[route]}]
            )

    def rule_targets(self) -> dict[str, tuple[str, ...]]:
        """Per route, the target groups its rule forwards to (with a weight above 0)."""
        rules = self.client("elbv2").describe_rules(RuleArns=list(self.rule_arns.values()))["Rules"]
        by_arn = {}
        for rule in rules:
            forward = next(action for action in rule["Actions"] if action["Type"] == "forward")
            weighted = forward.get("ForwardConfig", {}).get("TargetGroups")
            if weighted:
                by_arn[rule["RuleArn"]] = tuple(g["TargetGroupArn"] for g in weighted if g.get("Weight", 1) > 0)
            else:
                by_arn[rule["RuleArn"]] = (forward["TargetGroupArn"],)
        return {route: by_arn[arn] for route, arn in self.rule_arns.items()}

    def traffic(self) -> dict[str, str]:
        """Per route, the color whose target group takes its traffic, by the target groups' own tags."""
        elbv2 = self.client("elbv2")
        colors = {}
        for route, arns in self.rule_targets().items():
            tags = [self.tags(elbv2, arn) for arn in arns]
            found = {tag.get("color", "elsewhere") if tag.get("app") == APP else "elsewhere" for tag in tags}
            colors[route] = found.pop() if len(found) == 1 else "+".join(sorted(found))
        return colors

    @staticmethod
    def tags(elbv2: Any, arn: str) -> dict[str, str]:
        described = elbv2.describe_tags(ResourceArns=[arn])["TagDescriptions"][0]
        return {tag["Key"]: tag["Value"] for tag in described["Tags"]}

    def move_by_hand(self, route: str, color: str) -> None:
        """What an on-call person does in the console: point one rule at a color's target group."""
        elbv2 = self.client("elbv2")
        for group in elbv2.describe_target_groups()["TargetGroups"]:
            tags = self.tags(elbv2, group["TargetGroupArn"])
            if tags.get("app") == APP and tags.get("color") == color and tags.get("route") == route:
                action = {"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}
                elbv2.modify_rule(RuleArn=self.rule_arns[route], Actions=[action])
                return
        raise AssertionError(f"no {color} target group for {route}")

    def groups(self, color: str) -> list[dict[str, Any]]:
        """The app's Auto Scaling Groups of a color, as AWS describes them."""
        described = self.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
        return [
            group
            for group in described
            if {"app": APP, "color": color}.items() <= {t["Key"]: t["Value"] for t in group.get("Tags", [])}.items()
        ]

    def group(self, color: str) -> dict[str, Any]:
        found = self.groups(color)
        assert len(found) == 1, f"expected one {color} group, got {[g['AutoScalingGroupName'] for g in found]}"
        return found[0]

    def capacity_of(self, color: str) -> tuple[int, int, int]:
        """(min, desired, max) of the color's one group."""
        group = self.group(color)
        return group["MinSize"], group["DesiredCapacity"], group["MaxSize"]

    def images_in_use(self) -> dict[str, str]:
        """AMI id -> its state, for every AMI an instance or a launch template's latest version uses."""
        ec2 = self.client("ec2")
        used = {
            instance["ImageId"]
            for reservation in ec2.describe_instances()["Reservations"]
            for instance in reservation["Instances"]
            if instance["State"]["Name"] != "terminated"
        }
        for template in ec2.describe_launch_templates()["LaunchTemplates"]:
            versions = ec2.describe_launch_template_versions(
                LaunchTemplateId=template["LaunchTemplateId"], Versions=["$Latest"]
            )["LaunchTemplateVersions"]
            used |= {version["LaunchTemplateData"]["ImageId"] for version in versions}
        states = {}
        for ami in sorted(used):
            images = ec2.describe_images(ImageIds=[ami])["Images"] if ami.startswith("ami-") else []
            states[ami] = images[0]["State"] if images else "gone"
        return states

    def rule_tags(self, route: str) -> dict[str, str]:
        described = self.client("elbv2").describe_tags(ResourceArns=[self.rule_arns[route]])["TagDescriptions"][0]
        return {tag["Key"]: tag["Value"] for tag in described["Tags"]}

    def instance_ids(self, environment: ColorEnvironment) -> list[str]:
        group = self.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[environment.asg_name])
        return sorted(instance["InstanceId"] for instance in group["AutoScalingGroups"][0]["Instances"])

    def capacity(self, environment: ColorEnvironment) -> int:
        group = self.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[environment.asg_name])
        return group["AutoScalingGroups"][0]["DesiredCapacity"]
