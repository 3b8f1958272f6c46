"""Runs podman's healthchecks, which podman leaves to systemd timers.

Where PID 1 is not systemd, podman never probes a container and a Compose
``service_healthy`` condition waits for ever. This driver probes every container that has
a healthcheck: every ``STARTING_S`` while it starts (Compose is waiting), rarely once it is
healthy (a RabbitMQ probe costs about 1.7 s of CPU). It exits with the podman service.

    python -m coordctl.podman.health --service-pid PID
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import time
from dataclasses import dataclass

STARTING_S = 2.0
UNHEALTHY_S = 10.0
HEALTHY_S = 60.0
PROBE_TIMEOUT_S = 30.0
IDLE_S = 5.0
HEALTH = re.compile(r"\((?P<health>starting|healthy|unhealthy)\)")


@dataclass(frozen=True)
class Container:
    id: str
    health: str


def parse_ps(output: str) -> list[Container]:
    """Containers with a healthcheck, from ``podman ps --format '{{.ID}} {{.Status}}'``."""
    found = []
    for line in output.splitlines():
        container_id, _, status = line.strip().partition(" ")
        match = HEALTH.search(status)
        if container_id and match:
            found.append(Container(container_id, match["health"]))
    return found


def interval_s(health: str) -> float:
    return {"starting": STARTING_S, "unhealthy": UNHEALTHY_S}.get(health, HEALTHY_S)


def due(containers: list[Container], last_probe: dict[str, float], now: float) -> list[str]:
    """The containers whose next probe is due, given when each was last probed."""
    return [
        c.id
        for c in containers
        if now - last_probe.get(c.id, float("-inf")) >= interval_s(c.health)
    ]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def run(service_pid: int) -> None:
    last_probe: dict[str, float] = {}
    while alive(service_pid):
        listing = subprocess.run(
            ["podman", "ps", "--format", "{{.ID}} {{.Status}}"],
            capture_output=True,
            text=True,
            check=False,
        )
        containers = parse_ps(listing.stdout)
        for container_id in due(containers, last_probe, time.monotonic()):
            last_probe[container_id] = time.monotonic()
            with contextlib.suppress(subprocess.TimeoutExpired):
                subprocess.run(
                    ["podman", "healthcheck", "run", container_id],
                    capture_output=True,
                    timeout=PROBE_TIMEOUT_S,
                    check=False,
                )
        running = {c.id for c in containers}
        last_probe = {k: v for k, v in last_probe.items() if k in running}
        starting = any(c.health == "starting" for c in containers)
        time.sleep(STARTING_S / 2 if starting else IDLE_S)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service-pid", type=int, required=True)
    run(parser.parse_args().service_pid)


if __name__ == "__main__":
    main()
