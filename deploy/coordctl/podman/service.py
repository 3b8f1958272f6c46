"""Podman behind a Docker-compatible API socket of the project's own, started once and reused.

Setup (packages, the project's containers.conf, the images a registry would give) is done by
``deploy/prereqs/install.sh containers``, the same script CI runs. This module starts the API
service on a private socket (never /var/run/docker.sock, which would switch every other
Docker client on the machine) and the healthcheck driver podman needs without systemd.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

PODMAN_DIR = Path(os.environ.get("COORD_PODMAN_DIR", "/run/coord-podman"))
SOCKET = PODMAN_DIR / "podman.sock"
CONF = PODMAN_DIR / "containers.conf"
IMAGES_ENV = PODMAN_DIR / "images.env"
SERVICE_PID = PODMAN_DIR / "service.pid"
HEALTH_PID = PODMAN_DIR / "health.pid"
INSTALL_SCRIPT = Path(__file__).resolve().parents[2] / "prereqs" / "install.sh"


class PodmanError(RuntimeError):
    """Podman could not be set up or started; the message is one line a person can act on."""


def docker_host() -> str:
    return f"unix://{SOCKET}"


def podman_env() -> dict[str, str]:
    """Environment for every podman command: the project's containers.conf, not /etc's."""
    return {**os.environ, "CONTAINERS_CONF": str(CONF)}


def image_vars() -> dict[str, str]:
    """The locally built images Compose must use instead of the official ones (may be empty)."""
    if not IMAGES_ENV.exists():
        return {}
    pairs = (line.split("=", 1) for line in IMAGES_ENV.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def compose_env() -> dict[str, str]:
    """What Compose (and the Docker client) needs to use this podman: socket and images."""
    return {**image_vars(), "DOCKER_HOST": docker_host()}


def service_answers(timeout_s: float = 2.0) -> bool:
    """True when our podman API socket answers a ping."""
    if not SOCKET.exists():
        return False
    transport = httpx.HTTPTransport(uds=str(SOCKET))
    try:
        with httpx.Client(transport=transport, timeout=timeout_s) as client:
            return client.get("http://podman/_ping").status_code == 200
    except httpx.HTTPError:
        return False


def _read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def setup() -> None:
    """Install podman and build the images when missing (cached: quick the second time)."""
    try:
        subprocess.run(["bash", str(INSTALL_SCRIPT), "containers"], check=True)
    except subprocess.CalledProcessError as exc:
        raise PodmanError(f"setting up podman failed (exit {exc.returncode}); see above") from exc


def ensure_service(*, python: str = sys.executable, timeout_s: float = 30) -> int:
    """Start the API service and the healthcheck driver unless they run; return the service pid."""
    pid = _read_pid(SERVICE_PID)
    if pid is None or not service_answers():
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
        SOCKET.unlink(missing_ok=True)
        log = (PODMAN_DIR / "service.log").open("ab")
        process = subprocess.Popen(
            ["podman", "system", "service", "--time=0", docker_host()],
            env=podman_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        pid = process.pid
        SERVICE_PID.write_text(f"{pid}\n")
        deadline = time.monotonic() + timeout_s
        while not service_answers():
            if process.poll() is not None:
                raise PodmanError(f"podman system service exited; see {PODMAN_DIR}/service.log")
            if time.monotonic() > deadline:
                raise PodmanError(f"podman's API socket {SOCKET} did not answer in {timeout_s}s")
            time.sleep(0.2)
    if _read_pid(HEALTH_PID) is None:
        log = (PODMAN_DIR / "health.log").open("ab")
        driver = subprocess.Popen(
            [python, "-m", "coordctl.podman.health", "--service-pid", str(pid)],
            env=podman_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        HEALTH_PID.write_text(f"{driver.pid}\n")
    return pid


def stop_service() -> list[int]:
    """Stop the healthcheck driver and the API service we started; containers keep running."""
    stopped = []
    for path in (HEALTH_PID, SERVICE_PID):
        pid = _read_pid(path)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            stopped.append(pid)
        path.unlink(missing_ok=True)
    return stopped
