"""CPU time per job of every process on the path: where each job's cost goes.

psutil reads each process's user + system time (a worker's pool children included) before
and after a run; the difference over the run's jobs is the process's microseconds per job.
The broker and Redis are found by the port they listen on; on a shared machine they also
serve other users, so their figure is an upper bound for this run's share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import psutil

from coordctl.local import ClusterState
from shared.settings import Settings

SHARED_NOTE = "broker and redis are shared with other users: their µs/job are upper bounds"


def cpu_seconds(pid: int, *, children: bool = True) -> float:
    """User + system CPU time of ``pid`` (and its children, a worker's pool); 0 once gone."""
    try:
        process = psutil.Process(pid)
        total = 0.0
        for member in [process, *(process.children(recursive=True) if children else ())]:
            times = member.cpu_times()
            total += times.user + times.system
    except psutil.Error:
        return 0.0
    return total


def listening_pid(port: int) -> int | None:
    """The process listening on ``port`` on this machine, when it can be seen."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return None
    for connection in connections:
        if (
            connection.status == psutil.CONN_LISTEN
            and connection.laddr
            and connection.laddr.port == port
            and connection.pid
        ):
            return connection.pid
    return None


def server_pids(settings: Settings) -> dict[str, int]:
    """The broker's and Redis's pids, found by their ports (omitted when not local)."""
    pids: dict[str, int] = {}
    for name, url, default in (
        ("broker", settings.amqp_url.get_secret_value(), 5672),
        ("redis", settings.redis_url.get_secret_value(), 6379),
    ):
        parts = urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            continue
        if (pid := listening_pid(parts.port or default)) is not None:
            pids[name] = pid
    return pids


def cluster_pids(state: ClusterState) -> dict[str, int]:
    return {member.name: member.pid for member in state.members}


@dataclass(frozen=True)
class CpuMeter:
    """Named pids whose CPU time is read around a run; those named in ``alone`` without
    their children (the bench process itself, whose children are the measured ones)."""

    pids: Mapping[str, int]
    alone: frozenset[str] = frozenset()

    def read(self) -> dict[str, float]:
        return {
            name: cpu_seconds(pid, children=name not in self.alone)
            for name, pid in self.pids.items()
        }

    @staticmethod
    def per_job_us(
        before: Mapping[str, float], after: Mapping[str, float], jobs: int
    ) -> dict[str, float]:
        """Microseconds of CPU per job for each process, and their ``total``."""
        spent = {name: max(0.0, after[name] - before[name]) * 1e6 / jobs for name in before}
        spent["total"] = sum(spent.values())
        return {name: round(us, 1) for name, us in spent.items()}
