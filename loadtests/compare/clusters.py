"""Starting one fresh cluster per scenario: local processes, or Compose where Docker runs.

Every scenario gets a cluster of its own, so nothing one scenario leaves behind (a warm
pool, a backlog, a lag spike) colours the next. The driver only needs the gateway's URL
and, to account CPU per process, the pids; :func:`choose_starter` picks the one function
that provides them on this machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

import psutil

from deploy import compose
from deploy.engine import Engine, detect_engine, prepare_engine
from deploy.servers import host_port
from loadtests.compare.scenarios import Scenario
from loadtests.harness import scoped_cluster
from shared.settings import Settings


@dataclass(frozen=True)
class RunningCluster:
    gateway_url: str
    pids: dict[str, int] = field(default_factory=dict)
    """Member name -> pid of every service process; empty when they are not visible."""
    servers: dict[str, int] = field(default_factory=dict)
    """'rabbitmq' / 'redis' -> pid of the local server process, where one listens here."""


def local_server_pids(settings: Settings) -> dict[str, int]:
    """Pids of the RabbitMQ and Redis processes listening on this machine, if visible.

    Their CPU is part of every job's cost; on a small machine it competes with the pool.
    """
    wanted = {
        "rabbitmq": host_port(settings.amqp_url.get_secret_value(), 5672),
        "redis": host_port(settings.redis_url.get_secret_value(), 6379),
    }
    local = {name: port for name, (host, port) in wanted.items() if host in LOCAL_HOSTS}
    found: dict[str, int] = {}
    try:
        listening = [c for c in psutil.net_connections(kind="tcp") if c.status == "LISTEN"]
    except (psutil.Error, OSError):
        return found
    for name, port in local.items():
        for connection in listening:
            if connection.laddr and connection.laddr.port == port and connection.pid:
                found[name] = connection.pid
                break
    return found


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

ClusterStarter = Callable[[Settings, Scenario], AbstractContextManager[RunningCluster]]


@contextmanager
def local_cluster(settings: Settings, scenario: Scenario) -> Iterator[RunningCluster]:
    """The services as processes of this machine, stopped by pid and purged afterwards."""
    with scoped_cluster(
        settings, workers=scenario.workers, mode=scenario.mode, pool_size=scenario.pool_size
    ) as state:
        yield RunningCluster(
            state.gateway_url,
            {m.name: m.pid for m in state.members},
            local_server_pids(settings),
        )


@contextmanager
def compose_cluster(settings: Settings, scenario: Scenario) -> Iterator[RunningCluster]:
    """The Compose project, scaled to the scenario's workers, taken down afterwards.

    The containers' processes are not this process's to watch, so CPU per process is not
    recorded; everything else comes through the gateway's HTTP API as in the local case.
    """
    gateway_url = f"http://127.0.0.1:{settings.gateway_port}"
    env = prepare_engine(detect_engine())
    project = compose.Project(
        settings.namespace,
        {
            **env,
            "COORD_NAMESPACE": settings.namespace,
            "COORD_GATEWAY_PORT": str(settings.gateway_port),
        },
    )
    try:
        compose.compose_up(
            project, scenario.workers, scenario.mode, scenario.pool_size, gateway_url=gateway_url
        )
        yield RunningCluster(gateway_url)
    finally:
        compose.compose_down(project)


def choose_starter(*, local: bool = False) -> tuple[str, ClusterStarter]:
    """Compose when a Docker engine answers (unless ``local``), local processes otherwise.

    A Compose cluster takes its settings from ``.env`` and publishes the gateway on
    ``COORD_GATEWAY_PORT``; the comparison's own tuning (heartbeat interval, log level) then
    does not reach it, which only widens the lag window by up to two default heartbeats.
    """
    if not local and detect_engine() != Engine.LOCAL:
        return "compose", compose_cluster
    return "local processes", local_cluster
