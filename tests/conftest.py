"""Fixtures shared by every test layer.

Servers: with a Docker engine, pytest-docker starts RabbitMQ and Redis from
``tests/docker-compose.yml``; without one, the tests use the servers the settings name
(``COORD_AMQP_URL`` / ``COORD_REDIS_URL``, localhost by default) and fail with one clear
line when those are not reachable. Every test that touches a server gets a namespace of
its own, removed afterwards.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from coordctl.compose import compose_command_name, docker_engine_available
from coordctl.local import ClusterState, start_local_cluster, stop_local_cluster
from coordctl.namespace import purge_namespace
from coordctl.servers import free_port, host_port, is_listening
from shared.settings import Settings, WorkerMode, load_settings

ROOT = Path(__file__).resolve().parent.parent
LAYER_MARKERS = {
    "integration": "integration",
    "e2e": "e2e",
    "chaos": "chaos",
    "containers": "containers",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test's folder names the servers it needs: mark it so `-m` can select layers."""
    for item in items:
        layer = Path(str(item.fspath)).relative_to(ROOT / "tests").parts[0]
        if layer in LAYER_MARKERS:
            item.add_marker(getattr(pytest.mark, LAYER_MARKERS[layer]))


@dataclass(frozen=True)
class ServerUrls:
    amqp_url: str
    redis_url: str


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(ROOT / "tests" / "docker-compose.yml")


@pytest.fixture(scope="session")
def docker_compose_command() -> str:
    """``docker compose`` (v2) where installed, else ``docker-compose`` 1.x (Debian's)."""
    return compose_command_name()


@pytest.fixture(scope="session")
def docker_setup(docker_compose_command: str) -> list[str]:
    """Compose 1.x has no ``--wait``; the ``servers`` fixture waits for the ports instead."""
    return ["up --build --wait" if docker_compose_command == "docker compose" else "up --build -d"]


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return f"coordtest{os.getpid()}"


@pytest.fixture(scope="session")
def servers(request: pytest.FixtureRequest) -> ServerUrls:
    """Where RabbitMQ and Redis are for this test session."""
    configured = load_settings()
    amqp_url = configured.amqp_url.get_secret_value()
    redis_url = configured.redis_url.get_secret_value()
    if os.environ.get("COORD_TEST_USE_DOCKER", "auto") != "never" and docker_engine_available():
        docker_services = request.getfixturevalue("docker_services")
        docker_ip = request.getfixturevalue("docker_ip")
        amqp_port = docker_services.port_for("rabbitmq", 5672)
        redis_port = docker_services.port_for("redis", 6379)
        docker_services.wait_until_responsive(
            check=lambda: all(is_listening(docker_ip, p) for p in (amqp_port, redis_port)),
            timeout=90,
            pause=1,
        )
        return ServerUrls(
            f"amqp://guest:guest@{docker_ip}:{amqp_port}/", f"redis://{docker_ip}:{redis_port}/0"
        )
    missing = [
        f"{what} at {host}:{port}"
        for what, (host, port) in (
            ("RabbitMQ", host_port(amqp_url, 5672)),
            ("Redis", host_port(redis_url, 6379)),
        )
        if not is_listening(host, port)
    ]
    if missing:
        pytest.fail(
            f"not reachable: {', '.join(missing)}. No Docker engine runs either. Start them "
            "(make prereqs does) or point COORD_AMQP_URL / COORD_REDIS_URL at running servers.",
            pytrace=False,
        )
    return ServerUrls(amqp_url, redis_url)


@pytest.fixture
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def settings(servers: ServerUrls, namespace: str, tmp_path: Path) -> AsyncIterator[Settings]:
    """Settings for one test: its own namespace, port and run directory, purged afterwards."""
    test_settings = load_settings(
        namespace=namespace,
        amqp_url=servers.amqp_url,
        redis_url=servers.redis_url,
        gateway_port=free_port(),
        run_dir=tmp_path / "run",
        heartbeat_s=0.5,
        drain_timeout_s=10,
    )
    yield test_settings
    await purge_namespace(test_settings)


ClusterFactory = Callable[..., ClusterState]


@pytest.fixture
def start_cluster(settings: Settings) -> Iterator[ClusterFactory]:
    """Start the real service processes; every one started is stopped by pid afterwards.

    Keyword overrides change the cluster's settings (same namespace and run directory).
    """
    started: list[Path] = []

    def start(
        workers: int = 1,
        mode: WorkerMode = WorkerMode.PROCESSES,
        pool_size: int = 0,
        **overrides: object,
    ) -> ClusterState:
        started.append(settings.run_dir)
        return start_local_cluster(
            settings.replace(**overrides),
            workers=workers,
            mode=mode,
            pool_size=pool_size,
            python=sys.executable,
        )

    try:
        yield start
    finally:
        for run_dir in started:
            stop_local_cluster(run_dir, timeout_s=15)
