"""docker-compose.yml and .env.example: what Compose would run, checked without an engine."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.unit.deploy.conftest import ROOT, VARIABLE, find_tool

APP_SERVICES = ("gateway", "worker", "aggregator")
SERVERS = ("rabbitmq", "redis")
PUBLISHED = {"gateway": "8000", "locust": "8089", "grafana": "3000"}


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", str(duration))
    assert match, f"not a duration: {duration}"
    return float(match[1]) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[match[2]]


def test_docker_compose_accepts_the_file_with_every_profile() -> None:
    binary = find_tool("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    for profiles in ([], ["--profile", "load"], ["--profile", "observability"]):
        done = subprocess.run(
            [binary, "--env-file", ".env.example", *profiles, "config", "-q"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr


def test_docker_compose_refuses_to_start_without_passwords(tmp_path: Path) -> None:
    binary = find_tool("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")
    done = subprocess.run(
        [binary, "--env-file", str(empty_env), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert done.returncode != 0
    assert "PASSWORD" in done.stderr


def test_every_service_is_there_with_a_healthcheck(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in (*SERVERS, *APP_SERVICES, "locust", "prometheus", "grafana"):
        assert name in services, name
        assert "test" in services[name].get("healthcheck", {}), f"{name} has no healthcheck"
    assert "locust-worker" in services


def test_services_wait_for_healthy_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in APP_SERVICES:
        depends = services[name]["depends_on"]
        for server in SERVERS:
            assert depends[server] == {"condition": "service_healthy"}, (name, server)
    assert services["locust"]["depends_on"]["gateway"] == {"condition": "service_healthy"}
    assert services["locust-worker"]["depends_on"]["locust"]["condition"] == "service_healthy"


def test_app_services_share_one_image_built_from_the_dockerfile(compose: dict[str, Any]) -> None:
    services = compose["services"]
    images = {services[n]["image"] for n in (*APP_SERVICES, "locust", "locust-worker")}
    assert len(images) == 1
    for name in (*APP_SERVICES, "locust", "locust-worker"):
        assert services[name]["build"] == {
            "context": ".",
            "dockerfile": "deploy/Dockerfile",
            "args": {"PYTHON_IMAGE": "python:3.11-slim"},
        }
    commands = {n: " ".join(services[n]["command"]) for n in APP_SERVICES}
    for name, command in commands.items():
        assert f"python -m services.{name}" in command


def test_workers_can_scale(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert "hostname" not in worker


def test_only_the_gateway_locust_and_grafana_publish_ports(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        ports = service.get("ports", [])
        if name not in PUBLISHED:
            assert not ports, f"{name} publishes {ports}"
            continue
        assert len(ports) == 1
        address, _host_port, container_port = str(ports[0]).split(":")
        assert container_port == PUBLISHED[name]
        assert address == "127.0.0.1", "published on loopback unless PUBLISH_ADDR says otherwise"


def test_observability_and_load_services_sit_behind_profiles(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["locust"]["profiles"] == ["load"]
    assert services["locust-worker"]["profiles"] == ["load"]
    assert services["prometheus"]["profiles"] == ["observability"]
    assert services["grafana"]["profiles"] == ["observability"]
    for name in (*SERVERS, *APP_SERVICES):
        assert "profiles" not in services[name]


def test_containers_run_as_non_root(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        user = str(service.get("user", ""))
        if name in ("prometheus", "grafana"):
            assert user in ("", "nobody"), "their images run as a non-root user by default"
            continue
        assert user, f"{name} sets no user"
        assert user.split(":")[0] not in ("0", "root"), name


def test_credentials_come_from_env_and_never_guest(
    compose_text: str, compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    assert "guest" not in compose_text.lower()
    assert "guest" not in (ROOT / ".env.example").read_text().lower()
    rabbit = compose["services"]["rabbitmq"]["environment"]
    assert rabbit["RABBITMQ_DEFAULT_USER"] == env_example["RABBITMQ_USER"]
    assert rabbit["RABBITMQ_DEFAULT_PASS"] == env_example["RABBITMQ_PASSWORD"]
    assert "--requirepass" in compose["services"]["redis"]["command"]
    for name in APP_SERVICES:
        environment = compose["services"][name]["environment"]
        assert environment["COORD_AMQP_URL"] == (
            f"amqp://{env_example['RABBITMQ_USER']}:{env_example['RABBITMQ_PASSWORD']}"
            "@rabbitmq:5672/"
        )
        assert environment["COORD_REDIS_URL"] == (
            f"redis://:{env_example['REDIS_PASSWORD']}@redis:6379/0"
        )
    for match in re.finditer(r"\$\{(\w*PASSWORD)(:?[-?])?", compose_text):
        assert match[2] == ":?", f"{match[1]} must be required, never defaulted"


def test_env_example_covers_every_variable(compose_text: str, env_example: dict[str, str]) -> None:
    used = {m["name"] for m in VARIABLE.finditer(compose_text.replace("$$", ""))}
    assert used - set(env_example) == set()
    for key, value in env_example.items():
        if key.endswith("PASSWORD"):
            assert value.startswith("change-me"), f"{key} must be a placeholder"


def test_worker_mode_and_pool_come_from_the_environment(compose_text: str) -> None:
    assert "COORD_WORKER_MODE: ${COORD_WORKER_MODE:-processes}" in compose_text
    assert "COORD_POOL_SIZE: ${COORD_POOL_SIZE:-0}" in compose_text


def test_grace_period_outlasts_the_drain_deadline(compose: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        service = compose["services"][name]
        drain = float(service["environment"]["COORD_DRAIN_TIMEOUT_S"])
        assert seconds(service["stop_grace_period"]) >= drain + 5, name
