"""The local launcher: the cluster as processes on this machine, when no Docker engine runs.

``start_local_cluster`` records every pid it starts in ``<run_dir>/cluster.json`` before it
waits for health, so ``stop_local_cluster`` always stops exactly what was started, even
after a failed start.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from coordctl.client import GatewayClient, GatewayError, api_key_of, instances_or_none
from coordctl.servers import (
    ProcessIdentity,
    ServerProcess,
    ServerUnavailable,
    free_port,
    host_port,
    is_listening,
    kill_orphans,
    pid_alive,
    start_private_rabbitmq,
    start_private_redis,
    stop_process_group,
)
from services.gateway.group import member_env, member_instance
from shared.settings import Settings, WorkerMode, secret_env_names

STATE_FILE = "cluster.json"
GATEWAY_METRICS_DIR = "gateway-metrics"
"""Under the run directory: the metric files a group of gateways shares (several only)."""
STOP_ORDER = ("gateway", "worker", "aggregator")


class ClusterError(RuntimeError):
    """Something a person can act on; the CLI prints it as one line."""


@dataclass
class Member:
    name: str
    service: str
    pid: int
    log: str
    metrics_port: int = 0
    started: float = 0.0
    command: list[str] = field(default_factory=list)

    @property
    def identity(self) -> ProcessIdentity | None:
        """None for a state file written before identities were recorded."""
        return ProcessIdentity(self.started, tuple(self.command)) if self.started else None

    @property
    def alive(self) -> bool:
        """Running, and still the process we started: a reused pid is not ours."""
        if self.identity is not None:
            return self.identity.matches(self.pid)
        current = ProcessIdentity.of(self.pid)
        return (
            current is not None
            and f"services.{self.service}" in current.command
            and pid_alive(self.pid)
        )


@dataclass
class ClusterState:
    namespace: str
    gateway_url: str
    mode: str
    workers: int
    pool_size: int
    run_dir: str
    env: dict[str, str]
    members: list[Member] = field(default_factory=list)
    servers: list[ServerProcess] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    worker_python: str = ""
    """The workers' interpreter when it is not the launcher's (deploy/runtimes)."""
    worker_env: dict[str, str] = field(default_factory=dict)
    gateways: int = 1
    """Gateway processes on the one port: members ``gateway-1``.. when above 1."""

    @classmethod
    def load(cls, run_dir: Path) -> ClusterState | None:
        path = run_dir / STATE_FILE
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        data["members"] = [Member(**m) for m in data.get("members", [])]
        data["servers"] = [ServerProcess(**s) for s in data.get("servers", [])]
        return cls(**data)

    def save(self) -> None:
        path = Path(self.run_dir) / STATE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    def spawn(
        self,
        name: str,
        service: str,
        *,
        python: str,
        env: dict[str, str],
        logs: Path,
        metrics_port: int = 0,
    ) -> Member:
        """Start one service process; ``metrics_port`` is where its /metrics answers (0: off)."""
        log = logs / f"{name}.log"
        argv = [python, "-m", f"services.{service}"]
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv,
                env={**env, "COORD_INSTANCE": name, "COORD_METRICS_PORT": str(metrics_port)},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        # The command line is the argv given, not /proc's: read right after the fork it
        # may still show ours, since exec wakes the parent before it sets up the new argv.
        identity = ProcessIdentity.of(process.pid)
        member = Member(
            name=name,
            service=service,
            pid=process.pid,
            log=str(log),
            metrics_port=metrics_port,
            started=identity.started if identity else 0.0,
            command=argv,
        )
        self.members.append(member)
        self.save()
        return member


def service_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment every service process of this cluster gets: all of ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if name in {"instance", "run_dir"} or value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"COORD_{name.upper()}"] = str(value.value if isinstance(value, Enum) else value)
    env.update({"COORD_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1", **overrides})
    return env


def ensure_servers(settings: Settings, state: ClusterState) -> None:
    """Start private RabbitMQ/Redis where nothing listens on the configured local address."""
    run_dir = Path(state.run_dir)
    for what, url, default_port, start in (
        ("RabbitMQ", settings.amqp_url, 5672, start_private_rabbitmq),
        ("Redis", settings.redis_url, 6379, start_private_redis),
    ):
        host, port = host_port(url.get_secret_value(), default_port)
        if is_listening(host, port):
            continue
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ServerUnavailable(f"{what} at {host}:{port} is not reachable")
        state.servers.append(start(run_dir, port))
        state.save()


def start_local_cluster(
    settings: Settings,
    *,
    workers: int,
    mode: WorkerMode,
    pool_size: int = 0,
    python: str = sys.executable,
    worker_python: str = "",
    worker_env: dict[str, str] | None = None,
    wait_s: float = 90.0,
) -> ClusterState:
    """Start gateway, ``workers`` workers and the aggregator; return once all are healthy.

    ``worker_python`` and ``worker_env`` run the workers under another interpreter (a
    free-threaded build, say) while the gateway and the aggregator stay on ``python``.
    """
    if workers < 1:
        raise ClusterError("a cluster needs at least one worker")
    run_dir = settings.run_dir.resolve()
    existing = ClusterState.load(run_dir)
    if existing is not None and any(m.alive for m in existing.members):
        raise ClusterError(f"a cluster is already running from {run_dir}: run `cluster down`")
    if is_listening(settings.gateway_host, settings.gateway_port):
        raise ClusterError(f"port {settings.gateway_port} is taken: set COORD_GATEWAY_PORT")
    logs = run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    state = ClusterState(
        namespace=settings.namespace,
        gateway_url=f"http://{settings.gateway_host}:{settings.gateway_port}",
        mode=mode.value,
        workers=workers,
        pool_size=pool_size or settings.effective_pool_size,
        run_dir=str(run_dir),
        env={},
        worker_python=worker_python,
        worker_env=dict(worker_env or {}),
        gateways=settings.gateways,
    )
    state.save()
    try:
        ensure_servers(settings, state)
        env = service_env(settings, COORD_WORKER_MODE=mode.value, COORD_POOL_SIZE=str(pool_size))
        secrets = secret_env_names()
        state.env = {k: v for k, v in env.items() if k.startswith("COORD_") and k not in secrets}
        spawn = functools.partial(state.spawn, python=python, env=env, logs=logs)
        spawn("aggregator", "aggregator", metrics_port=metrics_port_for(settings))
        for index in range(1, workers + 1):
            spawn(
                f"worker-{index}",
                "worker",
                metrics_port=metrics_port_for(settings),
                python=worker_python or python,
                env={**env, **state.worker_env},
            )
        for name, gateway_env in gateway_members(settings.gateways, env, run_dir):
            spawn(name, "gateway", metrics_port=settings.gateway_port, env=gateway_env)
        wait_healthy(state, timeout_s=wait_s, api_key=api_key_of(settings))
    except BaseException:
        stop_local_cluster(run_dir, timeout_s=5)
        raise
    return state


def gateway_members(
    gateways: int, env: dict[str, str], run_dir: Path, *, only: str | None = None
) -> list[tuple[str, dict[str, str]]]:
    """Name and environment of each gateway process: ``gateway`` alone, or ``gateway-1``..
    sharing the port (SO_REUSEPORT, see services/gateway/group.py) and one folder of
    metric files, emptied here unless ``only`` one member is started again."""
    if gateways == 1:
        return [("gateway", env)]
    metrics_dir = run_dir / GATEWAY_METRICS_DIR
    if only is None:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    members = []
    for index in range(1, gateways + 1):
        name = member_instance("gateway", index)
        if only is None or only == name:
            members.append(
                (
                    name,
                    member_env(
                        env,
                        gateways=gateways,
                        index=index,
                        instance=name,
                        metrics_dir=str(metrics_dir),
                    ),
                )
            )
    return members


def metrics_port_for(settings: Settings) -> int:
    """A free port for one more local /metrics server, or 0 when metrics are off.

    Local processes share one address, so each gets its own port; the state file and
    ``cluster status`` say which.
    """
    return free_port(settings.effective_metrics_host) if settings.metrics_port else 0


def restart_member(settings: Settings, name: str, *, python: str = sys.executable) -> Member:
    """Start a member of a running cluster again (after it crashed or was killed)."""
    run_dir = settings.run_dir.resolve()
    state = ClusterState.load(run_dir)
    if state is None:
        raise ClusterError(f"no cluster state in {run_dir}")
    old = next((m for m in state.members if m.name == name), None)
    if old is None:
        raise ClusterError(f"no member called {name}")
    if old.alive:
        raise ClusterError(f"{name} is still running as pid {old.pid}")
    state.members.remove(old)
    env = service_env(settings, COORD_WORKER_MODE=state.mode, COORD_POOL_SIZE=str(state.pool_size))
    if old.service == "worker":
        python = state.worker_python or python
        env = {**env, **state.worker_env}
    if old.service == "gateway":
        ((_, env),) = gateway_members(state.gateways, env, run_dir, only=name)
    return state.spawn(
        name,
        old.service,
        python=python,
        env=env,
        logs=run_dir / "logs",
        metrics_port=old.metrics_port,
    )


def wait_healthy(state: ClusterState, *, timeout_s: float, api_key: str | None = None) -> None:
    """Ready means: the gateway is ready (/readyz) and every member sends heartbeats."""
    expected = {m.name for m in state.members}
    deadline = time.monotonic() + timeout_s
    seen: set[str] = set()
    with GatewayClient(state.gateway_url, api_key=api_key, timeout_s=2.0) as client:
        while time.monotonic() < deadline:
            for member in state.members:
                if not member.alive:
                    raise ClusterError(
                        f"{member.name} exited during start-up: {last_line(Path(member.log))}"
                    )
            try:
                if client.readiness().ready:
                    instances = client.instances().instances
                    seen = {b.instance for b in instances if time.time() - b.last_seen < 5}
                    if expected <= seen:
                        return
            except GatewayError:
                pass
            time.sleep(0.25)
    raise ClusterError(
        f"cluster not healthy after {timeout_s:.0f}s; waiting for {sorted(expected - seen)}"
    )


def stop_local_cluster(run_dir: Path, *, timeout_s: float = 30.0) -> list[str]:
    """Stop every process the state file names, gateway first, aggregator last."""
    run_dir = run_dir.resolve()
    state = ClusterState.load(run_dir)
    if state is None:
        return []
    stopped: list[str] = []
    for service in STOP_ORDER:
        for member in (m for m in state.members if m.service == service):
            # Only a process that is still the one we started gets a signal.
            if member.alive:
                stop_process_group(member.pid, timeout_s=timeout_s, expected=member.identity)
                stopped.append(member.name)
            elif member.identity is not None and kill_orphans(member.identity, member.pid):
                stopped.append(f"{member.name} (leftover processes)")
    for server in reversed(state.servers):
        if server.alive:
            stop_process_group(server.pid, timeout_s=timeout_s, expected=server.identity)
            stopped.append(server.name)
    (run_dir / STATE_FILE).unlink(missing_ok=True)
    shutil.rmtree(run_dir / GATEWAY_METRICS_DIR, ignore_errors=True)
    return stopped


def cluster_status(run_dir: Path, api_key: str | None = None) -> dict[str, Any] | None:
    """Every member with its pid and liveness, the live heartbeats and the queue depths."""
    state = ClusterState.load(run_dir.resolve())
    if state is None:
        return None
    report: dict[str, Any] = {
        "namespace": state.namespace,
        "gateway_url": state.gateway_url,
        "mode": state.mode,
        "members": [{**asdict(m), "alive": m.alive} for m in state.members],
        "servers": [{**s.to_dict(), "alive": s.alive} for s in state.servers],
        "instances": [],
        "queues": {},
    }
    answer = instances_or_none(state.gateway_url, api_key=api_key)
    if answer is None:
        report["gateway_reachable"] = False
    else:
        report["instances"] = [beat.model_dump(mode="json") for beat in answer.instances]
        report["queues"] = answer.queues
    return report


def last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return lines[-1][:300] if lines else "(empty log)"
