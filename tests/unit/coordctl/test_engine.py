"""coordctl.engine: Docker first, then our podman socket, then local processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from coordctl import engine
from coordctl.engine import Engine, detect_engine


@pytest.mark.parametrize(
    ("docker", "podman", "expected"),
    [
        (True, True, Engine.DOCKER),
        (False, True, Engine.PODMAN),
        (False, False, Engine.LOCAL),
    ],
)
def test_auto_takes_the_first_engine_that_answers(
    monkeypatch: pytest.MonkeyPatch, docker: bool, podman: bool, expected: Engine
) -> None:
    monkeypatch.setattr(engine, "docker_engine_available", lambda: docker)
    monkeypatch.setattr(engine.service, "service_answers", lambda: podman)
    assert detect_engine() == expected
    assert detect_engine(Engine.LOCAL) == Engine.LOCAL


def test_podman_compose_env_names_the_private_socket_and_the_local_images(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    images = tmp_path / "images.env"
    images.write_text("RABBITMQ_IMAGE=localhost/coord-rabbitmq:3.10-abc\nREDIS_IMAGE=r\n")
    monkeypatch.setattr(engine.service, "IMAGES_ENV", images)
    monkeypatch.setattr(engine.service, "service_answers", lambda: True)
    env = engine.engine_env(Engine.PODMAN)
    assert env["DOCKER_HOST"] == f"unix://{engine.service.SOCKET}"
    assert env["RABBITMQ_IMAGE"] == "localhost/coord-rabbitmq:3.10-abc"
    assert engine.engine_env(Engine.LOCAL).get("DOCKER_HOST") == os.environ.get("DOCKER_HOST")
