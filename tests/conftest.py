"""Test session fixtures: a moto server on 127.0.0.1 and a recorder of the AWS calls providers make."""

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.aws_model import AwsModel
from tests.aws_world import ColorEnvironment, World
from tests.call_recorder import Call, CallRecorder
from tests.engine import Engine
from tests.iam_policy import allows, iam_action
from tests.moto_server import FAKE_CREDENTIALS, start_moto
from tests.packer_spy import PackerSpy
from tests.project import Project
from tests.provider_host import provider_host
from tests.stack_config import PROJECT_DIR

RECORDER = CallRecorder()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server for the session; tests reset it instead of starting their own."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in FAKE_CREDENTIALS.items():
            patch.setenv(key, value)
        server, endpoint = start_moto(RECORDER)
        yield endpoint
        server.stop()


@pytest.fixture
def world(moto_endpoint: str) -> World:
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    return World(moto_endpoint)


@pytest.fixture
def blue_serves(world: World) -> tuple[ColorEnvironment, ColorEnvironment]:
    """The load balancer, both colors built, and every production rule on blue."""
    world.build_load_balancer()
    blue, green = world.build_color("blue"), world.build_color("green", version="1.1.0")
    world.point_rules_at(blue)
    return blue, green


@pytest.fixture
def api_calls(world: World) -> CallRecorder:
    """The AWS calls the moto server receives from anything but the test world itself, from now on."""
    RECORDER.clear()
    return RECORDER


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach real AWS: without an endpoint, credentials are fake and fail."""
    for key, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    os.environ.pop("AWS_PROFILE", None)


@pytest.fixture
def target_health(monkeypatch: pytest.MonkeyPatch) -> dict[Any, tuple[str, str, str]]:
    """(state, reason, description) that moto reports for a target: keyed by instance id for every
    target group, or by (target group name, instance id) for one group only.

    moto reports every registered instance healthy; the server runs in this process, so
    patching its model changes what any client sees.
    """
    from moto.elbv2 import models

    overrides: dict[Any, tuple[str, str, str]] = {}
    original = models.FakeTargetGroup.health_for

    def health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
        override = overrides.get((self.name, target["Id"])) or overrides.get(target["Id"])
        if override:
            state, reason, description = override
            return models.FakeHealthStatus(target["Id"], self.port, self.health_check_port, state, reason, description)
        return original(self, target, ec2_backend)

    monkeypatch.setattr(models.FakeTargetGroup, "health_for", health_for)
    return overrides


@pytest.fixture
def impaired(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Instance ids whose EC2 system status check moto reports impaired (it reports ok for all)."""
    from moto.ec2.models.instances import Instance

    failing: set[str] = set()
    original = Instance.system_status

    def system_status(self: Any) -> dict[str, Any]:
        if self.id in failing:
            return {"Status": "impaired", "Details": [{"Name": "reachability", "Status": "failed"}]}
        return original.fget(self)  # type: ignore[attr-defined]

    monkeypatch.setattr(Instance, "system_status", property(system_status))
    return failing


@pytest.fixture(scope="session")
def smoke_server() -> Iterator[str]:
    """A local HTTP app for smoke checks: /health says ok to Host app.example, /broken answers 500,
    /moved redirects elsewhere, /garbage answers no HTTP at all, /private says ok to Basic
    deploy:s3cret only, /colored echoes the color header."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class App(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "http://127.0.0.1:9/health")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path == "/garbage":
                self.wfile.write(b"SSH-2.0-OpenSSH\r\n")
                return
            status, body = (500, b"boom") if self.path == "/broken" else (200, b"nope")
            if self.path == "/health" and self.headers.get("Host") == "app.example":
                body = b"ok"
            if self.path == "/colored":
                body = (self.headers.get("X-Bluegreen-Color") or "none").encode()
            if self.path.startswith("/private"):
                allowed = self.headers.get("Authorization") == "Basic ZGVwbG95OnMzY3JldA=="
                status, body = (200, b"ok") if allowed else (401, b"who are you")
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), App)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def project(world: World, tmp_path: Path) -> Project:
    """A copy of the project whose Pulumi.yaml names the moto world's load balancer and network."""
    world.build_load_balancer()
    return Project.create(tmp_path / "project", world.project_config())


@pytest.fixture
def engine(project: Project, world: World) -> Iterator[Engine]:
    with provider_host(cwd=project.root) as host:
        yield Engine(project, AwsModel(world.endpoint), host)


@pytest.fixture
def failing_rules(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Rule ARNs whose modify_rule moto refuses, as a permission boundary or a rule lock would."""
    from moto.elbv2 import models
    from moto.elbv2.exceptions import ELBClientError

    failing: set[str] = set()
    original = models.ELBv2Backend.modify_rule

    def modify_rule(self: Any, rule_arn: str, *args: Any, **kwargs: Any) -> Any:
        if rule_arn in failing:
            raise ELBClientError("OperationNotPermitted", f"not allowed to modify {rule_arn}")
        return original(self, rule_arn, *args, **kwargs)

    monkeypatch.setattr(models.ELBv2Backend, "modify_rule", modify_rule)
    return failing


@pytest.fixture
def packer_spy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PackerSpy:
    """Every Packer run from now on, in this process and in provider hosts started after it, recorded."""
    spy = PackerSpy(tmp_path / "packer-spy")
    monkeypatch.setenv("PATH", spy.install())
    return spy


@pytest.fixture(autouse=True)
def _scale_in_deregisters_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS takes the instances an Auto Scaling Group terminates out of its target groups; moto leaves them
    registered, which would read as strangers in the color's target groups."""
    from moto.autoscaling.models import FakeAutoScalingGroup
    from moto.elbv2.models import elbv2_backends

    original = FakeAutoScalingGroup.set_desired_capacity

    def set_desired_capacity(self: Any, new_capacity: int | None) -> None:
        before = {state.instance.id for state in self.instance_states}
        original(self, new_capacity)
        removed = before - {state.instance.id for state in self.instance_states}
        elbv2 = elbv2_backends[self.account_id][self.region]
        for target_group in self.target_group_arns if removed else []:
            elbv2.deregister_targets(target_group, [{"Id": instance} for instance in removed])

    monkeypatch.setattr(FakeAutoScalingGroup, "set_desired_capacity", set_desired_capacity)


@pytest.fixture(scope="session", autouse=True)
def _least_privilege(moto_endpoint: str) -> Iterator[None]:
    """Least privilege, over the whole session: every AWS call any test made the program, its providers,
    Packer, a hook or scripts/status send must be one policy/deployer.json allows."""
    yield
    deployer = json.loads((PROJECT_DIR / "policy" / "deployer.json").read_text())
    refused = sorted(
        action
        for service, operation in RECORDER.every_operation
        if not allows(deployer, action := iam_action(Call(service, operation, "")))
    )
    assert refused == [], f"policy/deployer.json does not allow: {', '.join(refused)}"
