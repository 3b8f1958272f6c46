"""Which engine runs the cluster: Docker, podman through our private socket, or processes.

``auto`` picks Docker when ``docker info`` answers, else podman when our API socket answers
(``make up ENGINE=podman`` set it up), else local processes, the default where no engine
runs. Asking for podman sets it up and starts its service (cached, so quick when done).
"""

from __future__ import annotations

import os
from enum import StrEnum

from deploy.compose import docker_engine_available
from deploy.podman import service


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
    """The environment Compose runs with for an engine already set up (down, ps, logs)."""
    if engine == Engine.PODMAN:
        return {**os.environ, **service.compose_env()}
    return dict(os.environ)
