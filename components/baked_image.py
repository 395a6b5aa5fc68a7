"""BakedImage: the release's golden AMI, built by Packer + Ansible from image/, or reused.

An `available` AMI tagged with this app, version, template content hash and build hash (the
variables and source) is reused: no Packer run. A change of any of them replaces the image
(create-before-delete), so identity and reuse agree. Deleting it deregisters the AMI and its
snapshots, unless an instance or a launch template still uses it (P9).
"""

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from botocore.exceptions import ClientError
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider

from components.aws import AwsTarget
from components.config import Settings
from components.dynamic import changed_fields
from components.packer import PackerFailed, artifact_id, build_argv, run_build
from components.progress import report

IMAGE_DIR = "image"
REPLACING_FIELDS = ("app_name", "version", "template_hash", "variables", "build_source", "region")
KEPT_INPUTS = {"template_hash": "template_hash", "build_variables": "variables"}
SECRET_VARIABLES = ("http_proxy", "artifact_repository")
"""Release fields (components/release_plan.py) and the BakedImage inputs they come from."""
GONE_ERRORS = {"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidSnapshot.NotFound"}
IGNORED_IN_HASH = {"packer_cache", "__pycache__", "manifest.json"}


def template_hash(directory: Path) -> str:
    """SHA-256 over every file of the template directory (paths and contents), so any edit is a new image."""
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if not path.is_file() or any(part in IGNORED_IN_HASH or part.startswith(".") for part in relative.parts):
            continue
        digest.update(relative.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True, kw_only=True)
class BakedImageArgs:
    target: AwsTarget
    app_name: str
    color: str
    version: str
    template_dir: str
    """Relative to the project root, where the engine starts the provider."""
    template_hash: str
    variables: pulumi.Input[dict[str, Any]]
    """Template variables that shape the image: a change builds a new one. Secret: the proxy and the
    repository may carry credentials."""
    build_network: dict[str, str]
    """Where the build instance runs (subnet_id, security_group_id, iam_instance_profile): no rebuild."""
    build_source: str
    """"real" (SSH + Ansible) on AWS, "emulator" (no provisioning) against an AWS emulator."""
    build_timeout_seconds: float

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> "BakedImageArgs":
        return cls(
            target=AwsTarget.from_props(props),
            app_name=props["app_name"],
            color=props["color"],
            version=props["version"],
            template_dir=props["template_dir"],
            template_hash=props["template_hash"],
            variables=dict(props.get("variables") or {}),
            build_network=dict(props.get("build_network") or {}),
            build_source=props["build_source"],
            build_timeout_seconds=float(props["build_timeout_seconds"]),
        )

    def props(self) -> dict[str, Any]:
        return {**self.target.props(), **{name: value for name, value in vars(self).items() if name != "target"}}

    @property
    def build_hash(self) -> str:
        """Identity of everything else that shapes the image; the AMI is tagged with it, so reuse and identity agree."""
        shaping = json.dumps({"variables": self.variables, "build_source": self.build_source}, sort_keys=True)
        return hashlib.sha256(shaping.encode()).hexdigest()[:16]

    def packer_variables(self, vars_file: Path) -> dict[str, str]:
        """Every template variable; lists are written as HCL (JSON) lists."""
        given = {name: value if isinstance(value, str) else json.dumps(value) for name, value in self.variables.items()}
        return {
            **given,
            **self.build_network,
            "app_name": self.app_name,
            "version": self.version,
            "template_hash": self.template_hash,
            "build_hash": self.build_hash,
            "region": self.target.region,
            "ec2_endpoint": self.target.endpoint_url,
            "vars_file": str(vars_file),
        }

    @property
    def secrets(self) -> list[str]:
        """Values that may hold credentials: masked in everything Packer reports."""
        return [str(self.variables.get(name) or "") for name in SECRET_VARIABLES]


def find_reusable(ec2: Any, args: BakedImageArgs) -> dict[str, Any] | None:
    """The newest available AMI built from exactly these inputs (app, version, template, variables), if any."""
    filters = [
        {"Name": "tag:app", "Values": [args.app_name]},
        {"Name": "tag:version", "Values": [args.version]},
        {"Name": "tag:template_hash", "Values": [args.template_hash]},
        {"Name": "tag:build_hash", "Values": [args.build_hash]},
        {"Name": "state", "Values": ["available"]},
    ]
    images = ec2.describe_images(Owners=["self"], Filters=filters)["Images"]
    return max(images, key=lambda image: image.get("CreationDate", ""), default=None)


def _snapshot_ids(image: dict[str, Any]) -> list[str]:
    return [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")]


def users_of(ec2: Any, autoscaling: Any, ami_id: str) -> list[str]:
    """What still runs or would launch the AMI: instances, launch templates' latest and default
    versions, and launch template versions that Auto Scaling Groups pin."""
    users = []
    live_states = ["pending", "running", "stopping", "stopped"]
    filters = [{"Name": "image-id", "Values": [ami_id]}, {"Name": "instance-state-name", "Values": live_states}]
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        users += [f"instance {i['InstanceId']}" for r in page["Reservations"] for i in r["Instances"]]
    templates = ec2.get_paginator("describe_launch_template_versions").paginate(
        Versions=["$Latest", "$Default"], Filters=[{"Name": "image-id", "Values": [ami_id]}]
    )
    versions = [version for page in templates for version in page["LaunchTemplateVersions"]]
    pinned: dict[str, set[str]] = {}
    for page in autoscaling.get_paginator("describe_auto_scaling_groups").paginate():
        for group in page["AutoScalingGroups"]:
            template = group.get("LaunchTemplate") or {}
            if str(template.get("Version", "")).isdigit():
                pinned.setdefault(template["LaunchTemplateId"], set()).add(template["Version"])
    for template_id, numbers in pinned.items():
        versions += ec2.describe_launch_template_versions(LaunchTemplateId=template_id, Versions=sorted(numbers))[
            "LaunchTemplateVersions"
        ]
    users += sorted(
        {
            f"launch template {version['LaunchTemplateName']} version {version['VersionNumber']}"
            for version in versions
            if version["LaunchTemplateData"].get("ImageId") == ami_id
        }
    )
    return users


class BakedImageProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        args = BakedImageArgs.from_props(props)
        source = f"image {args.app_name} {args.version}"
        ec2 = args.target.client("ec2")
        image = find_reusable(ec2, args)
        if image is not None:
            report(source, f"reusing {image['ImageId']}: already built from this version, template and variables")
        else:
            ami_id = self._build(args, source)
            if ami_id is None:
                raise PackerFailed("packer build succeeded but reported no AMI id; nothing was recorded")
            image = ec2.describe_images(ImageIds=[ami_id])["Images"][0]
        outs = {**props, "ami_id": image["ImageId"], "ami_name": image["Name"], "snapshot_ids": _snapshot_ids(image)}
        return CreateResult(id_=image["ImageId"], outs=outs)

    @staticmethod
    def _build(args: BakedImageArgs, source: str) -> str | None:
        argv = build_argv("packer", Path(args.template_dir), f"amazon-ebs.{args.build_source}")
        with tempfile.TemporaryDirectory(prefix="bluegreen-build-") as scratch:
            variables = args.packer_variables(Path(scratch) / "playbook-vars.yml")
            return artifact_id(run_build(argv, variables, args.build_timeout_seconds, source, args.secrets))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = changed_fields(olds, news, REPLACING_FIELDS)
        return DiffResult(changes=bool(replaces), replaces=replaces, delete_before_replace=False)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        ec2 = AwsTarget.from_props(props).client("ec2")
        try:
            images = ec2.describe_images(ImageIds=[id_])["Images"]
        except ClientError as error:
            if error.response["Error"]["Code"] not in GONE_ERRORS:
                raise
            images = []
        if not images or images[0]["State"] in ("deregistered", "failed", "invalid"):
            return ReadResult(id_=None, outs={})
        return ReadResult(id_=id_, outs={**props, "snapshot_ids": _snapshot_ids(images[0])})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Deregisters the AMI and its snapshots, unless anything still runs or would launch it (P9).

        After a replacement that reused the same AMI the engine still deletes the old resource with
        the same id: the new launch template then uses it, so it stays.
        """
        target = AwsTarget.from_props(props)
        ec2 = target.client("ec2")
        source = f"image {props['app_name']} {props['version']}"
        users = users_of(ec2, target.client("autoscaling"), id_)
        if users:
            report(source, f"leaving {id_} in place: still used by {', '.join(users)}")
            return
        _ignoring_gone(lambda: ec2.deregister_image(ImageId=id_))
        for snapshot_id in props.get("snapshot_ids") or []:
            _ignoring_gone(lambda snapshot_id=snapshot_id: ec2.delete_snapshot(SnapshotId=snapshot_id))
        report(source, f"deregistered {id_} and deleted its snapshots")


def _ignoring_gone(call: Any) -> None:
    try:
        call()
    except ClientError as error:
        if error.response["Error"]["Code"] not in GONE_ERRORS:
            raise


class BakedImage(Resource, module="bluegreen", name="BakedImage"):
    """The golden AMI of one release."""

    ami_id: pulumi.Output[str]
    ami_name: pulumi.Output[str]
    snapshot_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: BakedImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        outputs = {"ami_id": None, "ami_name": None, "snapshot_ids": None}
        super().__init__(BakedImageProvider(), name, {**args.props(), **outputs}, opts)


def release_image(
    name: str, settings: Settings, template_hash: str, keep: list[str]
) -> tuple[pulumi.Input[str], "BakedImage | None"]:
    """The AMI the release runs, and the BakedImage that builds it (none for a configured image_id).

    `keep` names image inputs (release fields) the engine must leave as they are: a serving color
    keeps the image it runs until its next release.
    """
    if settings.image_id:
        return settings.image_id, None
    image = BakedImage(
        name,
        BakedImageArgs(
            target=settings.target,
            app_name=settings.app_name,
            color=settings.color,
            version=settings.version,
            template_dir=IMAGE_DIR,
            template_hash=template_hash,
            variables=pulumi.Output.secret(settings.image_build.variables()),
            build_network={
                "subnet_id": settings.subnet_ids[0],
                "security_group_id": settings.security_group_ids[0],
                "iam_instance_profile": settings.instance_profile,
            },
            # An emulator cannot run an instance to provision: build the same AMI without SSH there.
            build_source="emulator" if settings.endpoint_url else "real",
            build_timeout_seconds=settings.image_build.build_timeout_seconds,
        ),
        pulumi.ResourceOptions(
            ignore_changes=[KEPT_INPUTS[key] for key in keep], additional_secret_outputs=["variables"]
        ),
    )
    return image.ami_id, image
