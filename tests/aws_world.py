"""Builds, on the moto server, what the program expects to exist and what it creates.

A shared ALB with one listener rule per route (the platform team's), and for each color
the resources a BlueGreenEnvironment would own: tagged target groups, a launch template
and an Auto Scaling Group.
"""

from dataclasses import dataclass, field
from typing import Any

import boto3

from components.live_routes import forward_targets

REGION = "ap-northeast-1"
APP = "app"
ROUTES = ("web", "api")


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

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION)

    def props(self) -> dict[str, Any]:
        return {"region": REGION, "endpoint_url": self.endpoint}

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
        balancer = elbv2.create_load_balancer(Name="prod", Subnets=self.subnet_ids)["LoadBalancers"][0]
        original = self._target_group("original", tags={})
        listener = elbv2.create_listener(
            LoadBalancerArn=balancer["LoadBalancerArn"],
            Protocol="HTTP",
            Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": original}],
        )["Listeners"][0]
        for priority, route in enumerate(routes, start=10):
            rule = elbv2.create_rule(
                ListenerArn=listener["ListenerArn"],
                Priority=priority,
                Conditions=[{"Field": "path-pattern", "Values": [f"/{route}/*"]}],
                Actions=[{"Type": "forward", "TargetGroupArn": original}],
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
        rules = self.client("elbv2").describe_rules(RuleArns=list(self.rule_arns.values()))["Rules"]
        by_arn = {rule["RuleArn"]: forward_targets(rule["Actions"]) for rule in rules}
        return {route: by_arn[arn] for route, arn in self.rule_arns.items()}

    def rule_tags(self, route: str) -> dict[str, str]:
        described = self.client("elbv2").describe_tags(ResourceArns=[self.rule_arns[route]])["TagDescriptions"][0]
        return {tag["Key"]: tag["Value"] for tag in described["Tags"]}

    def instance_ids(self, environment: ColorEnvironment) -> list[str]:
        group = self.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[environment.asg_name])
        return sorted(instance["InstanceId"] for instance in group["AutoScalingGroups"][0]["Instances"])

    def capacity(self, environment: ColorEnvironment) -> int:
        group = self.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[environment.asg_name])
        return group["AutoScalingGroups"][0]["DesiredCapacity"]
