"""Starting one fresh cluster per scenario: local processes, or Compose where Docker runs.

Every scenario gets a cluster of its own, so nothing one scenario leaves behind (a warm
pool, a backlog, a lag spike) colours the next. The driver only needs the gateway's URL
and, to account CPU per process, the pids; :func:`choose_starter` picks the one function
that provides them on this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

from deploy import compose
from deploy.local import start_local_cluster, stop_local_cluster
from deploy.namespace import purge_namespace
from loadtests.compare.scenarios import Scenario
from shared.settings import Settings


@dataclass(frozen=True)
class RunningCluster:
    gateway_url: str
    pids: dict[str, int] = field(default_factory=dict)
    """Member name -> pid of every service process; empty when they are not visible."""


ClusterStarter = Callable[[Settings, Scenario], AbstractContextManager[RunningCluster]]


@contextmanager
def local_cluster(settings: Settings, scenario: Scenario) -> Iterator[RunningCluster]:
    """The services as processes of this machine, stopped by pid and purged afterwards."""
    try:
        state = start_local_cluster(
            settings, workers=scenario.workers, mode=scenario.mode, pool_size=scenario.pool_size
        )
        yield RunningCluster(state.gateway_url, {m.name: m.pid for m in state.members})
    finally:
        stop_local_cluster(settings.run_dir, timeout_s=15)
        with contextlib.suppress(Exception):
            asyncio.run(purge_namespace(settings))


@contextmanager
def compose_cluster(settings: Settings, scenario: Scenario) -> Iterator[RunningCluster]:
    """The Compose project, scaled to the scenario's workers, taken down afterwards.

    The containers' processes are not this process's to watch, so CPU per process is not
    recorded; everything else comes through the gateway's HTTP API as in the local case.
    """
    try:
        compose.compose_up(scenario.workers, scenario.mode, scenario.pool_size)
        yield RunningCluster(f"http://127.0.0.1:{settings.gateway_port}")
    finally:
        compose.compose_down()


def choose_starter() -> tuple[str, ClusterStarter]:
    """Compose when a Docker engine answers, local processes otherwise."""
    if compose.docker_engine_available():
        return "compose", compose_cluster
    return "local processes", local_cluster
