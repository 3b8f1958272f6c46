"""A Compose project of the real stack on a real engine: Docker if it answers, else podman.

``make prereqs`` installs podman and builds the images where no registry answers; these
fixtures only start podman's API service (and stop it again if they started it), so the
rest of the machine keeps seeing no engine.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator

import pytest

from coordctl import compose
from coordctl.engine import Engine, prepare_engine
from coordctl.podman import service
from coordctl.servers import free_port


@pytest.fixture(scope="session")
def engine_env() -> Iterator[dict[str, str]]:
    """The environment Compose needs for the engine; fails in one line when there is none."""
    engine = Engine.DOCKER if compose.docker_engine_available() else Engine.PODMAN
    if engine == Engine.PODMAN and shutil.which("podman") is None:
        pytest.fail("no Docker engine answers and podman is not installed: run `make prereqs`")
    was_running = service.service_answers()
    try:
        env = prepare_engine(engine)
    except (service.PodmanError, compose.ComposeError) as exc:
        pytest.fail(str(exc), pytrace=False)
    yield env
    if engine == Engine.PODMAN and not was_running:
        service.stop_service()


@pytest.fixture
def project(engine_env: dict[str, str]) -> Iterator[compose.Project]:
    """A project of its own (name, namespace, port, passwords), taken down afterwards."""
    name = f"coordct{os.getpid()}{secrets.token_hex(2)}"
    port = free_port()
    env = {
        **engine_env,
        "COORD_NAMESPACE": name,
        "COORD_GATEWAY_PORT": str(port),
        "RABBITMQ_USER": "coord",
        "RABBITMQ_PASSWORD": secrets.token_urlsafe(12),
        "REDIS_PASSWORD": secrets.token_urlsafe(12),
        "GRAFANA_ADMIN_PASSWORD": secrets.token_urlsafe(12),
        "STOP_GRACE_PERIOD": "15s",
        "COORD_DRAIN_TIMEOUT_S": "5",
    }
    stack = compose.Project(name, env)
    try:
        yield stack
    finally:
        if compose.project_containers(stack):
            compose.compose_down(stack)
