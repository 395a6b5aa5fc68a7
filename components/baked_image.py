"""BakedImage: the release's golden AMI, built by Packer + Ansible from image/, or reused.

An AMI tagged with this app, version and template content hash that is `available`
is reused: no Packer run. A new version, template or set of variables replaces the
image (create-before-delete). Deleting it deregisters the AMI and its snapshots,
unless a launch template of the other color still uses it.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from botocore.exceptions import ClientError
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider

from components.aws import Endpoint
from components.config import Settings
from components.packer import PackerFailed, artifact_id, build_argv, run_build
from components.progress import report
from components.props import changed_fields

REPLACING_FIELDS = ("app_name", "version", "template_hash", "variables", "build_source", "region")
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


@dataclass(frozen=True)
class ImageInputs:
    endpoint: Endpoint
    app_name: str
    color: str
    version: str
    template_dir: Path
    template_hash: str
    variables: dict[str, Any]
    build_network: dict[str, str]
    build_source: str
    build_timeout_seconds: float

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> "ImageInputs":
        return cls(
            endpoint=Endpoint.from_props(props),
            app_name=props["app_name"],
            color=props["color"],
            version=props["version"],
            template_dir=Path(props["template_dir"]),
            template_hash=props["template_hash"],
            variables=dict(props.get("variables") or {}),
            build_network=dict(props.get("build_network") or {}),
            build_source=props["build_source"],
            build_timeout_seconds=float(props["build_timeout_seconds"]),
        )

    def packer_variables(self) -> dict[str, str]:
        """Every -var for the template; lists are written as HCL (JSON) lists."""
        given = {name: value if isinstance(value, str) else json.dumps(value) for name, value in self.variables.items()}
        return {
            **given,
            **self.build_network,
            "app_name": self.app_name,
            "version": self.version,
            "template_hash": self.template_hash,
            "region": self.endpoint.region,
            "ec2_endpoint": self.endpoint.url or "",
        }


def find_reusable(ec2: Any, inputs: ImageInputs) -> dict[str, Any] | None:
    """The newest available AMI built from this version and template, if one exists."""
    filters = [
        {"Name": "tag:app", "Values": [inputs.app_name]},
        {"Name": "tag:version", "Values": [inputs.version]},
        {"Name": "tag:template_hash", "Values": [inputs.template_hash]},
        {"Name": "state", "Values": ["available"]},
    ]
    images = ec2.describe_images(Owners=["self"], Filters=filters)["Images"]
    return max(images, key=lambda image: image.get("CreationDate", ""), default=None)


def _snapshot_ids(image: dict[str, Any]) -> list[str]:
    return [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")]


def other_color_users(ec2: Any, app_name: str, color: str, ami_id: str) -> list[str]:
    """Launch templates of this app's other color whose latest or default version runs the AMI."""
    templates = ec2.describe_launch_templates(Filters=[{"Name": "tag:app", "Values": [app_name]}])["LaunchTemplates"]
    users = []
    for template in templates:
        tags = {tag["Key"]: tag["Value"] for tag in template.get("Tags", [])}
        if tags.get("color") == color:
            continue
        versions = ec2.describe_launch_template_versions(
            LaunchTemplateId=template["LaunchTemplateId"], Versions=["$Latest", "$Default"]
        )["LaunchTemplateVersions"]
        if any(version["LaunchTemplateData"].get("ImageId") == ami_id for version in versions):
            users.append(f"{template['LaunchTemplateName']} ({tags.get('color', 'untagged')})")
    return users


class BakedImageProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = ImageInputs.from_props(props)
        source = f"image {inputs.app_name} {inputs.version}"
        ec2 = inputs.endpoint.client("ec2")
        image = find_reusable(ec2, inputs)
        if image is not None:
            report(source, f"reusing {image['ImageId']}: already built from this version and template")
        else:
            argv = build_argv(
                "packer", inputs.template_dir, f"amazon-ebs.{inputs.build_source}", inputs.packer_variables()
            )
            ami_id = artifact_id(run_build(argv, inputs.build_timeout_seconds, source))
            if ami_id is None:
                raise PackerFailed("packer build succeeded but reported no AMI id; nothing was recorded")
            image = ec2.describe_images(ImageIds=[ami_id])["Images"][0]
        outs = {**props, "ami_id": image["ImageId"], "ami_name": image["Name"], "snapshot_ids": _snapshot_ids(image)}
        return CreateResult(id_=image["ImageId"], outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = changed_fields(olds, news, REPLACING_FIELDS)
        return DiffResult(changes=bool(replaces), replaces=replaces, delete_before_replace=False)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        ec2 = Endpoint.from_props(props).client("ec2")
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
        ec2 = Endpoint.from_props(props).client("ec2")
        source = f"image {props['app_name']} {props['version']}"
        users = other_color_users(ec2, props["app_name"], props["color"], id_)
        if users:
            report(source, f"leaving {id_} in place: still used by launch template {', '.join(users)}")
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


@dataclass(frozen=True, kw_only=True)
class BakedImageArgs:
    region: str
    endpoint_url: str
    app_name: str
    color: str
    version: str
    template_dir: str
    template_hash: str
    variables: dict[str, Any]
    """Template variables that shape the image: a change builds a new one."""
    build_network: dict[str, str]
    """Where the build instance runs (subnet_id, security_group_id, iam_instance_profile): no rebuild."""
    build_source: str
    """"real" (SSH + Ansible) on AWS, "emulator" (no provisioning) against an AWS emulator."""
    build_timeout_seconds: int


class BakedImage(Resource, module="bluegreen", name="BakedImage"):
    """The golden AMI of one release."""

    ami_id: pulumi.Output[str]
    ami_name: pulumi.Output[str]
    snapshot_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: BakedImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        outputs = {"ami_id": None, "ami_name": None, "snapshot_ids": None}
        super().__init__(BakedImageProvider(), name, {**vars(args), **outputs}, opts)


def release_image(
    name: str, settings: Settings, image_dir: Path, image_hash: str, opts: pulumi.ResourceOptions | None = None
) -> pulumi.Input[str]:
    """The AMI the release runs: the configured image_id, or a BakedImage built from image_dir (hashed image_hash)."""
    if settings.image_id:
        return settings.image_id
    build = settings.image_build
    image = BakedImage(
        name,
        BakedImageArgs(
            region=settings.region,
            endpoint_url=settings.endpoint_url,
            app_name=settings.app_name,
            color=settings.color,
            version=settings.version,
            template_dir=image_dir.name,
            template_hash=image_hash,
            variables={
                "source_ami_name": build.source_ami_name,
                "source_ami_owners": list(build.source_ami_owners),
                "ssh_username": build.ssh_username,
                "artifact_repository": build.artifact_repository,
                "artifact_group_id": build.artifact_group_id,
                "artifact_id": build.artifact_id,
                "http_proxy": build.http_proxy,
            },
            build_network={
                "subnet_id": settings.subnet_ids[0],
                "security_group_id": settings.security_group_ids[0],
                "iam_instance_profile": settings.instance_profile,
            },
            # An emulator cannot run an instance to provision: build the same AMI without SSH there.
            build_source="emulator" if settings.endpoint_url else "real",
            build_timeout_seconds=build.build_timeout_seconds,
        ),
        opts,
    )
    return image.ami_id
