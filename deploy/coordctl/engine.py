"""Which engine runs the cluster: Docker, podman through our private socket, or processes.

``auto`` picks Docker when ``docker info`` answers, else podman when our API socket answers
(``make up ENGINE=podman`` set it up), else local processes, the default where no engine
runs. Asking for podman sets it up and starts its service (cached, so quick when done).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum

from coordctl.compose import docker_engine_available
from coordctl.podman import service


class Engine(StrEnum):
    AUTO = "auto"
    DOCKER = "docker"
    PODMAN = "podman"
    LOCAL = "local"


def detect_engine(requested: Engine = Engine.AUTO) -> Engine:
    """The engine to use; never starts anything (see ``prepare_engine``)."""
    if requested != Engine.AUTO:
        return requested
    if docker_engine_available():
        return Engine.DOCKER
    if service.service_answers():
        return Engine.PODMAN
    return Engine.LOCAL


def prepare_engine(engine: Engine) -> dict[str, str]:
    """Set the engine up when needed; the environment Compose must run with."""
    if engine == Engine.PODMAN:
        service.setup()
        service.ensure_service()
        return {**os.environ, **service.compose_env()}
    return dict(os.environ)


def engine_env(engine: Engine) -> dict[str, str]:
    """The environment Compose runs with for an engine already set up (down, ps, logs).

    Podman's service is started again if it was stopped, but nothing is installed or built.
    """
    if engine == Engine.PODMAN:
        if not service.service_answers():
            service.ensure_service()
        return {**os.environ, **service.compose_env()}
    return dict(os.environ)


def available_container_engine() -> Engine | None:
    """Docker when it answers; podman when its service runs or it has been set up."""
    if docker_engine_available():
        return Engine.DOCKER
    if service.service_answers() or (
        shutil.which("podman") is not None and service.IMAGES_ENV.exists()
    ):
        return Engine.PODMAN
    return None


@contextmanager
def engine_for(engine: Engine | None) -> Iterator[dict[str, str] | None]:
    """The engine's Compose environment for a while; podman's service is stopped again
    afterwards if this started it, so the machine is left as it was."""
    if engine is None:
        yield None
        return
    was_running = engine != Engine.PODMAN or service.service_answers()
    try:
        yield prepare_engine(engine)
    finally:
        if not was_running:
            service.stop_service()
