"""The Compose path of ``cluster up``: used when a Docker engine answers."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from shared.settings import WorkerMode

COMPOSE_FILE = Path("docker-compose.yml")


def docker_engine_available() -> bool:
    """True when a Docker engine answers (the client alone is not enough)."""
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0 and bool(probe.stdout.strip())


def compose_command() -> list[str]:
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return ["docker", "compose", "-f", str(COMPOSE_FILE)]
    if shutil.which("docker-compose"):
        return ["docker-compose", "-f", str(COMPOSE_FILE)]
    raise RuntimeError("neither `docker compose` nor `docker-compose` is installed")


def compose_up(workers: int, mode: WorkerMode, pool_size: int) -> None:
    env_args = ["--scale", f"worker={workers}"]
    subprocess.run(
        [*compose_command(), "up", "-d", "--build", "--wait", *env_args],
        env={
            **os.environ,
            "MODE": mode.value,
            "POOL": str(pool_size),
        },
        check=True,
    )


def compose_down() -> None:
    subprocess.run([*compose_command(), "down", "--remove-orphans"], check=True)


def compose_ps() -> None:
    subprocess.run([*compose_command(), "ps"], check=True)


def compose_logs(follow: bool) -> subprocess.Popen[bytes]:
    argv = [*compose_command(), "logs", "--no-log-prefix", "--no-color"]
    if follow:
        argv.append("--follow")
    return subprocess.Popen(argv, stdout=subprocess.PIPE)
