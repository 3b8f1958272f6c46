"""Container health probes: ``python -m services.probe gateway|worker|aggregator``.

The slim image has no curl, and workers and the aggregator serve no HTTP of their own, so
Compose healthchecks and Kubernetes exec probes call this module. Exit 0 means healthy; any
other outcome prints one line and exits 1.

- ``gateway``: ``GET /readyz`` (or ``/healthz`` with ``--live``) on the gateway's own port.
- ``worker`` / ``aggregator``: this container's instance wrote a heartbeat to Redis within
  ``--max-age`` seconds. The heartbeat starts only once the service holds its broker and
  Redis connections, so a fresh one means the service is up and doing its rounds.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated

import httpx
import typer
from pydantic import ValidationError
from redis import Redis
from redis.exceptions import RedisError

from shared.api import Paths
from shared.heartbeat import Beat, parse_beats
from shared.settings import Settings, load_settings


class Service(StrEnum):
    GATEWAY = "gateway"
    WORKER = "worker"
    AGGREGATOR = "aggregator"


class ProbeFailed(Exception):
    """The probed service is not healthy; the message says why in one line."""


def probe_gateway(settings: Settings, *, live: bool, timeout_s: float) -> str:
    path = Paths.HEALTH if live else Paths.READINESS
    url = f"http://127.0.0.1:{settings.gateway_port}{path}"
    try:
        answer = httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise ProbeFailed(f"{url}: {exc.__class__.__name__}") from exc
    if answer.status_code != 200:
        raise ProbeFailed(f"{url} answered {answer.status_code}: {answer.text[:200]}")
    return f"{url} ok"


def own_heartbeats(
    entries: Mapping[bytes | str, bytes | str], service: str, instance: str, hostname: str
) -> list[Beat]:
    """Heartbeats of ``service`` written from this container.

    An instance is named ``{hostname}-{pid}`` unless ``COORD_INSTANCE`` names it, and the
    probe runs in the same container (same hostname) but as another process.
    """
    ours = [
        raw
        for name, raw in entries.items()
        if (key := name.decode() if isinstance(name, bytes) else str(name)) == instance
        or key.startswith(f"{hostname}-")
    ]
    return [beat for beat in parse_beats(ours) if beat.service == service]


def probe_heartbeat(
    settings: Settings, service: Service, *, max_age_s: float, timeout_s: float
) -> str:
    client = Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
    )
    try:
        entries = client.hgetall(settings.names.instances)
    except RedisError as exc:
        raise ProbeFailed(f"redis unreachable: {exc.__class__.__name__}") from exc
    finally:
        client.close()
    hostname = socket.gethostname()
    beats = own_heartbeats(entries, service.value, settings.instance, hostname)
    if not beats:
        raise ProbeFailed(f"no {service.value} heartbeat from {hostname} yet")
    age = time.time() - max(beat.last_seen for beat in beats)
    if age > max_age_s:
        raise ProbeFailed(f"{service.value} heartbeat is {age:.0f}s old (max {max_age_s:.0f}s)")
    return f"{service.value} heartbeat {age:.1f}s old"


def probe(
    service: Annotated[Service, typer.Argument(help="which service runs in this container")],
    live: Annotated[bool, typer.Option(help="gateway: liveness (/healthz), not readiness")] = False,
    max_age: Annotated[float, typer.Option(help="worker/aggregator: oldest heartbeat, s")] = 30.0,
    timeout: Annotated[float, typer.Option(help="seconds per network call")] = 3.0,
) -> None:
    """Exit 0 when the service in this container is healthy, else print why and exit 1."""
    try:
        settings = load_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        typer.echo(f"unhealthy: bad setting COORD_{str(first['loc'][0]).upper()}", err=True)
        raise typer.Exit(1) from None
    try:
        if service is Service.GATEWAY:
            message = probe_gateway(settings, live=live, timeout_s=timeout)
        else:
            message = probe_heartbeat(settings, service, max_age_s=max_age, timeout_s=timeout)
    except ProbeFailed as exc:
        typer.echo(f"unhealthy: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(message)


def main() -> None:
    typer.run(probe)


if __name__ == "__main__":
    main()
