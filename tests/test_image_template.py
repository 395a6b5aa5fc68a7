"""No config value becomes code on the way to the build instance, and no secret is shown.

Hostile values that config validation refuses at startup are fed here straight to BakedImage, as
if validation had missed them, and the real Packer template builds with them on the emulator source.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.baked_image import BakedImageProvider
from components.packer import PackerFailed, run_build
from tests.aws_world import World
from tests.packer_spy import PackerSpy
from tests.test_baked_image import image_props


def hostile(marker: Path) -> dict[str, str]:
    """Each would run a command on the build instance if it were spliced into a shell or a template."""
    return {
        "artifact_id": f"app;touch${{IFS}}{marker}-1;#",
        "artifact_group_id": f"com.example$(touch {marker}-2)",
        "artifact_repository": f"{{{{ lookup('pipe', 'touch {marker}-3') }}}}",
        "http_proxy": f"http://proxy`touch {marker}-4`:3128 '\"{{{{ 7 * 7 }}}}",
    }


class _UnsafeLoader(yaml.SafeLoader):
    """Reads Ansible's !unsafe tag as the plain string it marks."""


_UnsafeLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


@pytest.fixture
def hostile_build(world: World, packer_spy: PackerSpy, tmp_path: Path) -> tuple[dict[str, str], dict[str, Any], Path]:
    """One real emulator build with hostile variables: (the values, Packer's recorded run, the marker prefix)."""
    marker = tmp_path / "pwned"
    values = hostile(marker)
    variables = {"source_ami_owners": ["amazon"], **values}
    BakedImageProvider().create(image_props(world, variables=variables))
    (run,) = packer_spy.runs()
    return values, run, marker


def test_playbook_variables_arrive_as_the_exact_values(
    hostile_build: tuple[dict[str, str], dict[str, Any], Path],
) -> None:
    values, run, marker = hostile_build
    playbook_vars = yaml.load(run["playbook_vars"], Loader=_UnsafeLoader)
    assert {key: playbook_vars[key] for key in values} == values
    assert "!unsafe" in run["playbook_vars"], "Ansible must never template these values"
    assert list(marker.parent.glob("pwned-*")) == []


def test_ansible_reads_them_as_data(hostile_build: tuple[dict[str, str], dict[str, Any], Path], tmp_path: Path) -> None:
    """The same --extra-vars @file the template's ansible-local step passes, read by the real Ansible."""
    values, run, marker = hostile_build
    vars_file = tmp_path / "playbook-vars.yml"
    vars_file.write_text(run["playbook_vars"])
    message = "|".join(f"{{{{ {key} }}}}" for key in values)
    debug = ["-m", "ansible.builtin.debug", "-a", f"msg={message}", "-e", f"@{vars_file}"]
    shown = subprocess.run(
        ["ansible", "localhost", "-c", "local", *debug],
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false"},
        timeout=120,
    )
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert json.loads(shown.stdout.split("=>", 1)[1])["msg"] == "|".join(values.values())
    assert list(marker.parent.glob("pwned-*")) == []


def test_packer_gets_no_value_on_its_command_line_and_no_shell(
    hostile_build: tuple[dict[str, str], dict[str, Any], Path],
) -> None:
    values, run, _ = hostile_build
    assert run["argv"] == ["build", "-machine-readable", "-color=false", "-only=amazon-ebs.emulator", run["argv"][-1]]
    assert run["ppid"] == os.getpid(), "Packer must be a child of the provider, with no shell in between"
    assert {key: run["variables"][key] for key in values} == values


def test_the_vars_file_is_uploaded_read_and_removed_by_constant_commands() -> None:
    """The real source's steps name the file by a constant path and take no value in a command."""
    template = (Path(__file__).resolve().parent.parent / "image" / "bluegreen.pkr.hcl").read_text()
    build = template.split("\nbuild {", 1)[1]
    assert 'extra_arguments = ["--extra-vars", "@${local.remote_vars_file}"]' in build
    assert 'inline = ["rm -f ${local.remote_vars_file}"]' in build
    interpolated = {part.split("}", 1)[0] for part in build.split("${")[1:]}
    assert interpolated <= {
        "base64encode(local.playbook_vars)",
        "base64encode(var.vars_file)",
        "base64encode(var.http_proxy)",
        "local.remote_vars_file",
        "path.root",
    }, "a value interpolated raw into a provisioner would reach a Go template or a shell"


def test_secrets_are_masked_in_everything_packer_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / "packer"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import os\n"
        "proxy = os.environ['PKR_VAR_http_proxy']\n"
        "print(f'1,amazon-ebs.real,ui,say,connecting through {proxy}')\n"
        "print(f'1,amazon-ebs.real,error,proxy {proxy} refused the connection')\n"
        "raise SystemExit(1)\n"
    )
    fake.chmod(0o755)
    proxy = "http://deploy:S3CRET@proxy.example:3128"
    with pytest.raises(PackerFailed) as failed:
        run_build([str(fake)], {"http_proxy": proxy}, 30, "image", secrets=[proxy])
    shown = capsys.readouterr().err + str(failed.value)
    assert "S3CRET" not in shown
    assert "connecting through ****" in shown and "proxy **** refused the connection" in shown
