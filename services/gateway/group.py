"""Several gateway processes on one port: each binds its own socket with ``SO_REUSEPORT``.

Why ``SO_REUSEPORT`` and not uvicorn's ``workers=N``: uvicorn's supervisor shares one
listening socket, and every process then races to ``accept`` on it. The process that
wakes first drains the whole backlog, so a burst of connections (100 users connecting at
once, then keeping their connections) can land mostly on one process; Node's cluster
module dropped that scheme for this reason. With a socket per process, the kernel hashes
each new connection to one of the sockets, which spreads them evenly, and a process is
an ordinary process with its own pid, instance name, heartbeat, connections to RabbitMQ
and Redis, and SIGTERM drain. What it costs: connections still queued on the socket of a
process that dies are reset, and any process of the same user may join the port, so the
launcher refuses a port that already listens.

Who starts the group: the local launcher starts each process as a member of its own (so
``cluster status`` and ``cluster down`` see every pid); in a container,
``python -m services.gateway`` with ``COORD_GATEWAYS=N`` runs :func:`run_group`, which
starts N processes, forwards SIGTERM and SIGINT to them, replaces one that dies, and
stops all when one never started (exit code 3, as uvicorn's own supervisor does: a bad
setting or a port it may not join would fail the same way again).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from types import FrameType

import structlog
from uvicorn.config import STARTUP_FAILURE

from shared.metrics import MULTIPROCESS_DIR_ENV, forget_process
from shared.settings import Settings

log = structlog.get_logger()


def bind_reuse_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` that other processes of this user may bind too;
    uvicorn listens on it (``Server.run(sockets=...)``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def member_instance(base: str, index: int) -> str:
    """``gateway-2``: the name of process ``index`` of a group named ``base``."""
    return f"{base}-{index}"


def member_env(
    base_env: dict[str, str], *, gateways: int, index: int, instance: str, metrics_dir: str
) -> dict[str, str]:
    """The environment of gateway ``index`` of ``gateways``, sharing ``metrics_dir``."""
    return {
        **base_env,
        "COORD_GATEWAYS": str(gateways),
        "COORD_GATEWAY_INDEX": str(index),
        "COORD_INSTANCE": instance,
        MULTIPROCESS_DIR_ENV: metrics_dir,
    }


def fresh_metrics_dir(parent: str | None = None) -> str:
    """A new empty folder for the group's metric files (under ``parent`` when given):
    files of an earlier run would add their counts to this one's."""
    return tempfile.mkdtemp(prefix="coord-gateway-metrics-", dir=parent)


@dataclass
class Child:
    index: int
    process: subprocess.Popen[bytes]


def run_group(settings: Settings) -> int:
    """Run ``settings.gateways`` gateway processes on the port until SIGTERM or SIGINT;
    the exit code is 0 after a signal, 1 when a process could not start."""
    metrics_dir = fresh_metrics_dir(os.environ.get(MULTIPROCESS_DIR_ENV))
    base_env = dict(os.environ)
    stopping: list[int] = []

    def on_signal(signum: int, _: FrameType | None) -> None:
        stopping.append(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)

    def start(index: int) -> Child:
        env = member_env(
            base_env,
            gateways=settings.gateways,
            index=index,
            instance=member_instance(settings.instance, index),
            metrics_dir=metrics_dir,
        )
        process = subprocess.Popen([sys.executable, "-m", "services.gateway"], env=env)
        log.info("gateway_process_started", index=index, pid=process.pid)
        return Child(index, process)

    children = [start(index) for index in range(1, settings.gateways + 1)]
    failed = False
    try:
        while not stopping and not failed:
            time.sleep(0.2)
            for position, child in enumerate(children):
                code = child.process.poll()
                if code is None or stopping:
                    continue
                forget_process(child.process.pid)
                log.error("gateway_process_exited", index=child.index, exit_code=code)
                if code == STARTUP_FAILURE:
                    failed = True
                    break
                children[position] = start(child.index)
    finally:
        for child in children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + settings.drain_timeout_s + 5
        for child in children:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 1 if failed else 0
