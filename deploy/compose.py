"""The Compose path of ``cluster up``: used when a Docker engine answers."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from shared.settings import WorkerMode

COMPOSE_FILE = Path("docker-compose.yml")
ENV_FILE = Path(".env")
ENV_EXAMPLE = Path(".env.example")
SECRET_KEY = re.compile(r"^(?P<key>[A-Z0-9_]*PASSWORD)=.*$", re.MULTILINE)


class ComposeError(RuntimeError):
    """Compose is missing or failed; the message is one line a person can act on."""


@dataclass(frozen=True)
class ComposeCli:
    argv: list[str]
    can_wait: bool
    """``docker compose`` (v2) waits for healthchecks itself; ``docker-compose`` 1.x cannot."""


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


def compose_cli() -> ComposeCli:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ComposeCli(["docker", "compose", "-f", str(COMPOSE_FILE)], can_wait=True)
    if shutil.which("docker-compose"):
        return ComposeCli(["docker-compose", "-f", str(COMPOSE_FILE)], can_wait=False)
    raise ComposeError("neither `docker compose` nor `docker-compose` is installed")


def compose_command() -> list[str]:
    return compose_cli().argv


def ensure_env_file(env_file: Path = ENV_FILE, example: Path = ENV_EXAMPLE) -> bool:
    """Write ``.env`` from ``.env.example`` with fresh random passwords, unless one exists.

    Compose refuses to start without the broker and Redis passwords, and the example's
    placeholders must never run anywhere. Returns True when it wrote the file.
    """
    if env_file.exists():
        return False
    if not example.exists():
        raise ComposeError(f"{env_file} is missing and there is no {example} to start from")
    text = SECRET_KEY.sub(lambda m: f"{m['key']}={secrets.token_urlsafe(18)}", example.read_text())
    env_file.touch(mode=0o600)
    env_file.write_text(text)
    return True


def _run(argv: list[str], env: dict[str, str] | None = None) -> None:
    try:
        subprocess.run(argv, env=env, check=True)
    except subprocess.CalledProcessError as exc:
        command = " ".join(argv[: argv.index("-f")] + argv[argv.index("-f") + 2 :][:1])
        raise ComposeError(f"`{command}` failed (exit {exc.returncode})") from exc


def wait_ready(url: str, timeout_s: float) -> None:
    """Poll the gateway's /readyz: what `docker compose up --wait` does for Compose 1.x."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise ComposeError(f"the gateway at {url} was not ready within {timeout_s:.0f}s")


def compose_up(
    workers: int, mode: WorkerMode, pool_size: int, *, gateway_url: str, timeout_s: float = 300
) -> bool:
    """Build and start the cluster with ``workers`` replicas; True if it wrote a new .env."""
    cli = compose_cli()
    wrote_env = ensure_env_file()
    argv = [*cli.argv, "up", "-d", "--build", "--scale", f"worker={workers}"]
    if cli.can_wait:
        argv.insert(argv.index("--build"), "--wait")
    _run(
        argv,
        env={
            **os.environ,
            "COORD_WORKER_MODE": mode.value,
            "COORD_POOL_SIZE": str(pool_size),
        },
    )
    if not cli.can_wait:
        wait_ready(gateway_url, timeout_s)
    return wrote_env


def compose_down() -> None:
    _run([*compose_command(), "down", "--remove-orphans"])


def compose_ps() -> None:
    _run([*compose_command(), "ps"])


def compose_logs(follow: bool) -> subprocess.Popen[bytes]:
    argv = [*compose_command(), "logs", "--no-log-prefix", "--no-color"]
    if follow:
        argv.append("--follow")
    return subprocess.Popen(argv, stdout=subprocess.PIPE)
