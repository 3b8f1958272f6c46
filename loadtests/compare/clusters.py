"""Starting one fresh cluster per scenario: local processes, or Compose where Docker runs.

Every scenario gets a cluster of its own, so nothing one scenario leaves behind (a warm
pool, a backlog, a lag spike) colours the next. The driver only needs the gateway's URL
and, to account CPU per process, the pids; :func:`choose_starter` picks the one function
that provides them on this machine.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from coordctl import compose
from coordctl.engine import detect_engine, prepare_engine
from coordctl.servers import host_port
from loadtests.compare.cpustat import cpu_stat_path
from loadtests.compare.scenarios import Scenario
from loadtests.harness import scoped_cluster
from shared.settings import Settings

IMAGE_STEP_RUNS = 5
"""Single jobs timed in a worker container before each containerised scenario (about 0.5 s)."""
WORKER_HEARTBEAT_S = 0.25
"""Worker heartbeats bracket each measured window; frequent ones keep idle time out of it.
Only the workers beat this often in local clusters: four beats a second from the gateway and
the aggregator cost CPU the window counts (about 5 ms a second in all) and nothing reads them."""


def fast_heartbeats(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` for the workers, with their heartbeat interval set to ``WORKER_HEARTBEAT_S``."""
    return {**(env or {}), "COORD_HEARTBEAT_S": str(WORKER_HEARTBEAT_S)}


@dataclass(frozen=True)
class RunningCluster:
    gateway_url: str
    pids: dict[str, int] = field(default_factory=dict)
    """Member name -> pid of every service process; empty when they are not visible."""
    servers: dict[str, int] = field(default_factory=dict)
    """'rabbitmq' / 'redis' -> pid of the local server process, where one listens here."""
    cpu_stats: dict[str, Path] = field(default_factory=dict)
    """Worker container -> its cgroup's cpu.stat, where the workers run under a CPU quota."""
    time_step: Callable[[int], list[float]] | None = None
    """Where the workers run another interpreter than this process (a container image: the
    official images' CPython is built with PGO and LTO, a pyenv build is not, and one core's
    step differed by a fifth between them here): CPU ms of single ``cpu`` jobs of size n,
    timed where the workers run. None: they run this interpreter."""


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
        settings,
        workers=scenario.workers,
        mode=scenario.mode,
        pool_size=scenario.pool_size,
        worker_env=fast_heartbeats(),
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
    project = compose.Project(settings.namespace, {**env, **project_env(settings)})
    try:
        compose.compose_up(
            project, scenario.workers, scenario.mode, scenario.pool_size, gateway_url=gateway_url
        )
        yield RunningCluster(gateway_url, time_step=step_timer(project))
    finally:
        compose.compose_down(project)


def step_timer(
    project: compose.Project, runs: int = IMAGE_STEP_RUNS
) -> Callable[[int], list[float]]:
    """Times the step in the project's first worker container, by the probe the runtime rows
    use; a container that cannot answer gives no samples, and its row keeps the calibration."""

    def time_step(n: int) -> list[float]:
        try:
            printed = compose.run_in_service(
                project,
                "worker",
                "python",
                "-m",
                "loadtests.compare.runtime_probe",
                "calibrate",
                str(n),
                str(runs),
            )
            samples = json.loads(printed.strip().splitlines()[-1])["samples_ms"]
            return [float(sample) for sample in samples]
        except (compose.ComposeError, ValueError, KeyError, IndexError, TypeError):
            return []

    return time_step


def choose_starter(*, local: bool = False) -> tuple[str, ClusterStarter]:
    """Compose when a Docker engine answers (unless ``local``), local processes otherwise.

    A Compose cluster takes its settings from ``.env`` and publishes the gateway on
    ``COORD_GATEWAY_PORT``; the comparison's own tuning (heartbeat interval, log level) then
    does not reach it, which only widens the lag window by up to two default heartbeats.
    """
    if not local and compose.docker_engine_available():
        return "compose", compose_cluster
    return "local processes", local_cluster


QUOTA_FILE = Path(__file__).with_name("cpu-quota.compose.yml")
APP_SERVICES = ("gateway", "worker", "aggregator")


def project_env(settings: Settings) -> dict[str, str]:
    """What a scenario's Compose project is told: its namespace, port, tuning, passwords."""
    return {
        "COORD_NAMESPACE": settings.namespace,
        "COORD_GATEWAY_PORT": str(settings.gateway_port),
        "COORD_RUNNERS": str(settings.runners),
        "COORD_LOG_LEVEL": settings.log_level,
        "COORD_HEARTBEAT_S": str(WORKER_HEARTBEAT_S),
        "RABBITMQ_USER": "coord",
        "RABBITMQ_PASSWORD": secrets.token_urlsafe(12),
        "REDIS_PASSWORD": secrets.token_urlsafe(12),
        "GRAFANA_ADMIN_PASSWORD": secrets.token_urlsafe(12),
        "STOP_GRACE_PERIOD": "15s",
        "COORD_DRAIN_TIMEOUT_S": "5",
    }


def service_process(pid: int) -> int:
    """The service under a container's init: below tini and shell wrappers, one child each."""
    try:
        process = psutil.Process(pid)
        while process.name() in ("tini", "sh", "bash", "docker-entrypoi"):
            children = process.children()
            if len(children) != 1:
                break
            process = children[0]
    except psutil.Error:
        return pid
    return process.pid


def container_pids(project: compose.Project) -> dict[str, tuple[str, int]]:
    """Member name -> (service, host pid of the container's init) for running containers."""
    found: dict[str, tuple[str, int]] = {}
    with compose.engine_client(project.env) as client:
        for container in compose.project_containers(project, every=False):
            labels = container.get("Labels") or {}
            service = labels.get("com.docker.compose.service", "?")
            number = labels.get("com.docker.compose.container-number", "1")
            state = client.get(f"/containers/{container['Id']}/json").json().get("State", {})
            if state.get("Pid"):
                found[f"{service}-{number}"] = (service, int(state["Pid"]))
    return found


def container_starter(engine_env: dict[str, str]) -> ClusterStarter:
    """Clusters in containers on the engine ``engine_env`` names, workers under a CPU quota."""

    @contextmanager
    def start(settings: Settings, scenario: Scenario) -> Iterator[RunningCluster]:
        gateway_url = f"http://127.0.0.1:{settings.gateway_port}"
        env = {**engine_env, **project_env(settings), "WORKER_CPUS": f"{scenario.cpus or 0:g}"}
        project = compose.Project(
            settings.namespace, env, (compose.COMPOSE_FILE, QUOTA_FILE), quiet=True
        )
        try:
            compose.compose_up(
                project,
                scenario.workers,
                scenario.mode,
                scenario.pool_size,
                gateway_url=gateway_url,
                write_env_file=False,
            )
            members = container_pids(project)
            yield RunningCluster(
                gateway_url,
                pids={
                    name: service_process(pid)
                    for name, (service, pid) in members.items()
                    if service in APP_SERVICES
                },
                servers={
                    service: service_process(pid)
                    for service, pid in members.values()
                    if service not in APP_SERVICES
                },
                cpu_stats={
                    name: path
                    for name, (service, pid) in members.items()
                    if service == "worker" and (path := cpu_stat_path(pid)) is not None
                },
                time_step=step_timer(project),
            )
        finally:
            compose.compose_down(project)

    return start
