"""``python -m coordctl.podman``: podman's API service for scripts and make targets.

    python -m coordctl.podman start          # set up if needed, start the service; print its pid
    python -m coordctl.podman stop           # stop the service and healthcheck driver we started
    python -m coordctl.podman run -- CMD...  # run CMD against a container engine

``run`` gives CMD ``DOCKER_HOST`` (our socket) and the locally built images' variables,
unless a Docker engine already answers. It stops the service afterwards if it started it,
so only CMD ever sees an engine.
"""

from __future__ import annotations

import subprocess
import sys

from coordctl.compose import docker_engine_available
from coordctl.podman import service


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("start", "stop", "run"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        if argv[0] == "start":
            service.setup()
            print(f"podman API service pid {service.ensure_service()} at {service.docker_host()}")
            return 0
        if argv[0] == "stop":
            stopped = service.stop_service()
            print(f"stopped: {', '.join(map(str, stopped))}" if stopped else "nothing to stop")
            return 0
        command = argv[1:]
        if command[:1] == ["--"]:
            command = command[1:]
        if not command:
            print("usage: python -m coordctl.podman run -- CMD...", file=sys.stderr)
            return 2
        if docker_engine_available():
            return subprocess.run(command, check=False).returncode
        was_running = service.service_answers()
        service.setup()
        service.ensure_service()
        try:
            env = {**service.podman_env(), **service.compose_env()}
            return subprocess.run(command, env=env, check=False).returncode
        finally:
            if not was_running:
                service.stop_service()
    except service.PodmanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
