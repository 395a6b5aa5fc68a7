"""BakedImage with the real Packer binary building against the moto server."""

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from components.baked_image import BakedImageProvider, template_hash
from components.packer import PackerFailed, parse_line, run_build
from tests.aws_world import APP, World
from tests.packer_spy import REAL_PACKER, PackerSpy
from tests.stack_config import PROJECT_DIR

IMAGE_DIR = PROJECT_DIR / "image"
PACKER = str(REAL_PACKER)


def image_props(world: World, **overrides: Any) -> dict[str, Any]:
    return {
        **world.props(),
        "app_name": APP,
        "color": "green",
        "version": "1.0.0",
        "template_dir": str(IMAGE_DIR),
        "template_hash": "0" * 64,
        "variables": {"source_ami_owners": ["amazon"], "artifact_id": "app"},
        "build_network": {"security_group_id": world.default_security_group()},
        "build_source": "emulator",
        "build_timeout_seconds": 120.0,
        **overrides,
    }


def tagged_images(world: World) -> list[dict[str, Any]]:
    return world.client("ec2").describe_images(Owners=["self"], Filters=[{"Name": "tag:app", "Values": [APP]}])[
        "Images"
    ]


def test_build_creates_an_available_tagged_ami(
    world: World, packer_spy: PackerSpy, capsys: pytest.CaptureFixture[str]
) -> None:
    outs = BakedImageProvider().create(image_props(world)).outs
    image = world.client("ec2").describe_images(ImageIds=[outs["ami_id"]])["Images"][0]
    tags = {tag["Key"]: tag["Value"] for tag in image["Tags"]}
    assert image["State"] == "available"
    assert tags["app"] == APP and tags["version"] == "1.0.0" and tags["template_hash"] == "0" * 64
    assert outs["snapshot_ids"] and outs["ami_name"].startswith("app-1.0.0-")
    assert len(packer_spy.runs()) == 1
    assert "amazon-ebs.emulator" in capsys.readouterr().err, "Packer's progress must reach the user"


def test_identical_create_reuses_the_image_without_packer(world: World, packer_spy: PackerSpy) -> None:
    provider = BakedImageProvider()
    first = provider.create(image_props(world)).outs
    second = provider.create(image_props(world)).outs
    assert second["ami_id"] == first["ami_id"]
    assert len(packer_spy.runs()) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"template_hash": "1" * 64},
        {"version": "1.0.1"},
        {"variables": {"source_ami_owners": ["amazon"], "artifact_id": "other"}},
    ],
    ids=["template", "version", "variables"],
)
def test_any_change_of_identity_builds_a_new_image(world: World, packer_spy: PackerSpy, change: dict[str, Any]) -> None:
    """Reuse and identity agree: what replaces the resource is never answered with the old AMI."""
    provider = BakedImageProvider()
    first = provider.create(image_props(world)).outs
    second = provider.create(image_props(world, **change)).outs
    assert second["ami_id"] != first["ami_id"]
    assert len(packer_spy.runs()) == 2
    assert provider.diff("ami", first, image_props(world, **change)).replaces == list(change)


def test_packer_failure_quotes_packer_and_records_nothing(world: World, packer_spy: PackerSpy) -> None:
    nothing = image_props(world, variables={"source_ami_name": "no-such-image-*"})
    with pytest.raises(PackerFailed) as failed:
        BakedImageProvider().create(nothing)
    assert "exit code 1" in str(failed.value)
    assert "No AMI was found matching filters" in str(failed.value)
    assert "no-such-image-*" in str(failed.value)
    assert tagged_images(world) == []


def test_build_timeout_kills_packer(world: World, packer_spy: PackerSpy) -> None:
    started = time.monotonic()
    with pytest.raises(PackerFailed, match=r"timed out after 0\.1s"):
        BakedImageProvider().create(image_props(world, build_timeout_seconds=0.1))
    assert time.monotonic() - started < 5


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def test_build_timeout_kills_packers_children_too(tmp_path: Path) -> None:
    """Packer runs plugins and provisioners as children: a timeout must not leave them running."""
    child_pid = tmp_path / "child.pid"
    fake = tmp_path / "packer"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import subprocess, time\n"
        f"child = subprocess.Popen(['sleep', '300'])\nopen({str(child_pid)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(300)\n"
    )
    fake.chmod(0o755)
    failures: list[BaseException] = []

    def build() -> None:
        try:
            run_build([str(fake)], {}, 1.0, "image", secrets=[])
        except PackerFailed as failed:
            failures.append(failed)

    runner = threading.Thread(target=build, daemon=True)
    runner.start()
    runner.join(timeout=20)
    assert not runner.is_alive(), "the build hangs: a surviving child keeps Packer's output open"
    assert "timed out" in str(failures[0])
    pid = int(child_pid.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "Packer's child outlived the timeout"


def test_check_and_diff_never_run_packer(world: World, packer_spy: PackerSpy) -> None:
    """What a preview calls: a new version is a replacement to show, not a build to run."""
    provider = BakedImageProvider()
    olds = {**image_props(world), "ami_id": "ami-0123456789abcdef0"}
    news = image_props(world, version="2.0.0")
    provider.check(olds, news)
    assert provider.diff("ami", olds, news).replaces == ["version"]
    assert packer_spy.runs() == []


def test_delete_removes_ami_and_snapshots_and_is_safe_to_repeat(world: World, packer_spy: PackerSpy) -> None:
    provider = BakedImageProvider()
    outs = provider.create(image_props(world)).outs
    provider.delete(outs["ami_id"], outs)
    provider.delete(outs["ami_id"], outs)
    assert tagged_images(world) == []
    snapshots = world.client("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert not {snapshot["SnapshotId"] for snapshot in snapshots} & set(outs["snapshot_ids"])


def test_delete_leaves_an_image_a_launch_template_still_uses(world: World, packer_spy: PackerSpy) -> None:
    provider = BakedImageProvider()
    outs = provider.create(image_props(world)).outs
    world.client("ec2").create_launch_template(
        LaunchTemplateName="anyone", LaunchTemplateData={"ImageId": outs["ami_id"]}
    )
    provider.delete(outs["ami_id"], outs)
    assert [image["ImageId"] for image in tagged_images(world)] == [outs["ami_id"]]


def test_delete_leaves_an_image_a_group_pins_by_version(world: World, packer_spy: PackerSpy) -> None:
    """An idle group at 0 instances pinned to an older template version would launch this image again."""
    world.build_load_balancer()
    provider = BakedImageProvider()
    outs = provider.create(image_props(world)).outs
    color = world.build_color("green", instances=0, ami_id=outs["ami_id"])
    world.client("ec2").create_launch_template_version(
        LaunchTemplateId=color.launch_template_id, LaunchTemplateData={"ImageId": world.amazon_linux_amis()[0]}
    )
    provider.delete(outs["ami_id"], outs)
    assert [image["ImageId"] for image in tagged_images(world)] == [outs["ami_id"]]


def test_delete_leaves_an_image_an_instance_runs(world: World, packer_spy: PackerSpy) -> None:
    provider = BakedImageProvider()
    outs = provider.create(image_props(world)).outs
    world.client("ec2").run_instances(ImageId=outs["ami_id"], MinCount=1, MaxCount=1)
    provider.delete(outs["ami_id"], outs)
    assert [image["ImageId"] for image in tagged_images(world)] == [outs["ami_id"]]


def test_read_reports_an_image_deregistered_outside_pulumi(world: World, packer_spy: PackerSpy) -> None:
    provider = BakedImageProvider()
    outs = provider.create(image_props(world)).outs
    assert provider.read(outs["ami_id"], outs).id == outs["ami_id"]
    world.client("ec2").deregister_image(ImageId=outs["ami_id"])
    assert not provider.read(outs["ami_id"], outs).id


def test_diff_replaces_on_release_inputs_only(world: World) -> None:
    provider = BakedImageProvider()
    olds = {**image_props(world), "ami_id": "ami-0123456789abcdef0"}
    assert provider.diff("ami", olds, image_props(world)).changes is False
    assert provider.diff("ami", olds, image_props(world, build_timeout_seconds=10.0)).changes is False
    assert provider.diff("ami", olds, image_props(world, build_network={"subnet_id": "subnet-1"})).changes is False
    result = provider.diff("ami", olds, image_props(world, version="1.0.1"))
    assert result.replaces == ["version"] and result.delete_before_replace is False


def test_template_hash_follows_every_file(tmp_path: Path) -> None:
    copy = tmp_path / "image"
    shutil.copytree(IMAGE_DIR, copy)
    before = template_hash(copy)
    assert template_hash(copy) == before
    (copy / "ansible" / "roles" / "app" / "defaults" / "main.yml").write_text("app_port: 9090\n")
    assert template_hash(copy) != before


def test_machine_readable_lines_are_unescaped() -> None:
    line = parse_line("1795696831,amazon-ebs.emulator,error,No AMI%!(PACKER_COMMA) see:\\n  filters\n")
    assert line is not None and line.data == ("No AMI, see:\n  filters",)
    assert parse_line("plain output") is None


def test_packer_template_validates_and_is_formatted() -> None:
    required = ["-var", "app_name=app", "-var", "version=1.0.0", "-var", "region=r"]
    required += ["-var", "template_hash=x", "-var", "build_hash=y", "-var", "vars_file=/tmp/vars.yml"]
    validate = subprocess.run([str(PACKER), "validate", *required, "."], cwd=IMAGE_DIR, capture_output=True, text=True)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    fmt = subprocess.run([str(PACKER), "fmt", "-check", "."], cwd=IMAGE_DIR, capture_output=True, text=True)
    assert fmt.returncode == 0, f"packer fmt would change: {fmt.stdout}"


def test_playbook_passes_ansible_syntax_check() -> None:
    playbook = shutil.which("ansible-playbook")
    if playbook is None:
        pytest.fail("ansible-playbook is not installed: run ./scripts/setup")
    check = subprocess.run(
        [playbook, "--syntax-check", "-i", "localhost,", "setup.yml"],
        cwd=IMAGE_DIR / "ansible",
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
