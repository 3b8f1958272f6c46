"""RabbitMQ and Redis for a local cluster: use what listens, or start private instances.

A private instance runs in the foreground of its own session with its data under the run
directory, so it is stopped by its pid and never touches a server someone else runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil


class ServerUnavailable(RuntimeError):
    """A server is needed, nothing listens, and it cannot be started here."""


@dataclass(frozen=True)
class ProcessIdentity:
    """What tells a process we started from one that got its pid later (after a crash or a
    reboot, a state file's pid may name anything): its start time and command line."""

    started: float
    """Seconds from boot to the process's start: the kernel's own figure, which, unlike
    psutil's wall-clock ``create_time``, does not move when the system clock is set."""
    command: tuple[str, ...]

    @classmethod
    def of(cls, pid: int) -> ProcessIdentity | None:
        try:
            process = psutil.Process(pid)
            # create_time adds the boot time (itself now - uptime, so it shifts with the
            # clock); taking it off again right away leaves the kernel's start tick.
            started = process.create_time() - psutil.boot_time()
            return cls(round(started, 2), tuple(process.cmdline()))
        except psutil.Error:
            return None

    def matches(self, pid: int) -> bool:
        """True when ``pid`` is still this very process (and is not a zombie)."""
        current = ProcessIdentity.of(pid)
        return (
            current is not None
            and abs(current.started - self.started) < START_TIME_TOLERANCE_S
            and current.command == self.command
            and pid_alive(pid)
        )


START_TIME_TOLERANCE_S = 0.05
"""The start tick is exact (1/100 s); the tolerance only absorbs float rounding."""


@dataclass
class ServerProcess:
    name: str
    pid: int
    port: int
    log: str
    started: float = 0.0
    command: list[str] = field(default_factory=list)

    @classmethod
    def just_started(cls, name: str, pid: int, port: int, log: str) -> ServerProcess:
        """Record the identity once the server listens (its start script has exec'd by then)."""
        identity = ProcessIdentity.of(pid) or ProcessIdentity(0.0, ())
        return cls(name, pid, port, log, identity.started, list(identity.command))

    @property
    def identity(self) -> ProcessIdentity:
        return ProcessIdentity(self.started, tuple(self.command))

    @property
    def alive(self) -> bool:
        return self.identity.matches(self.pid)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def is_listening(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the kernel's pick), for a process to bind next."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def wait_listening(
    host: str,
    port: int,
    *,
    timeout_s: float,
    what: str,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Wait for a port to accept connections; fail at once if ``process`` exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if is_listening(host, port):
            return
        if process is not None and process.poll() is not None:
            hint = f"; see {log}" if log is not None else ""
            raise ServerUnavailable(f"{what} exited with code {process.returncode}{hint}")
        time.sleep(0.2)
    raise ServerUnavailable(f"{what} did not start listening on {host}:{port} in {timeout_s:.0f}s")


def start_private_redis(
    run_dir: Path, port: int, *, password: str | None = None, persistent: bool = False
) -> ServerProcess:
    """A Redis of its own port and data directory; ``persistent`` keeps data over restarts."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerUnavailable(
            "Redis is not reachable and redis-server is not installed: "
            "install it (apt-get install redis-server) or set COORD_REDIS_URL"
        )
    data = run_dir / f"redis-{port}"
    data.mkdir(parents=True, exist_ok=True)
    log = data / "redis.log"
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += (
        ["--appendonly", "yes", "--appendfsync", "always"] if persistent else ["--appendonly", "no"]
    )
    argv += ["--dir", str(data.resolve()), "--logfile", str(log.resolve())]
    if password:
        argv += ["--requirepass", password]
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    wait_listening("127.0.0.1", port, timeout_s=15, what="redis-server", process=process, log=log)
    return ServerProcess.just_started("redis", process.pid, port, str(log))


DEBIAN_RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


def rabbitmq_binary() -> str | None:
    """The server script itself: Debian's ``/usr/sbin`` wrapper would ``su`` to the
    ``rabbitmq`` user, who cannot write a private data directory owned by us."""
    if DEBIAN_RABBITMQ_SERVER.exists():
        return str(DEBIAN_RABBITMQ_SERVER)
    return shutil.which("rabbitmq-server")


def start_private_rabbitmq(run_dir: Path, port: int) -> ServerProcess:
    """A RabbitMQ node of its own name, ports and data, next to any other on the machine."""
    binary = rabbitmq_binary()
    if binary is None:
        raise ServerUnavailable(
            "RabbitMQ is not reachable and rabbitmq-server is not installed: "
            "install it (apt-get install rabbitmq-server) or set COORD_AMQP_URL"
        )
    base = (run_dir / f"rabbitmq-{port}").resolve()
    base.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "HOME": str(base),
        "RABBITMQ_NODENAME": f"coord{port}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(free_port()),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),
    }
    (base / "enabled_plugins").write_text("[].\n")
    (base / "rabbitmq.conf").write_text("loopback_users = none\n")
    log = base / "server.out"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [binary], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    wait_listening(
        "127.0.0.1", port, timeout_s=90, what="rabbitmq-server", process=process, log=log
    )
    return ServerProcess.just_started("rabbitmq", process.pid, port, str(log))


def stop_process_group(
    pid: int, *, timeout_s: float, expected: ProcessIdentity | None = None
) -> bool:
    """Stop a process we started in a session of its own; True when it stopped in time.

    SIGTERM goes to the leader alone, so a worker drains while its pool processes keep
    computing; whatever is left of the session when the leader exits (or misses the
    deadline) is killed. With ``expected``, a pid that is no longer that process (its
    start time or command line differ) is not running as far as we are concerned: it gets
    no signal at all.
    """
    if expected is not None and not expected.matches(pid):
        return True
    stopped = True
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        stopped = not pid_alive(pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    wait_gone(pid, timeout_s=5)
    return stopped


def kill_orphans(leader: ProcessIdentity, pid: int) -> int:
    """Kill what is left of a session whose leader (``pid``, ``leader``) has died, e.g. a
    crashed worker's pool processes; returns how many. Only when no process holds the pid
    any more (a reused pid leads a session that is not ours), and only processes started
    after the leader."""
    if psutil.pid_exists(pid) and pid_alive(pid):
        return 0
    killed = 0
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) != pid:
                continue
            identity = ProcessIdentity.of(process.pid)
            if identity is None or identity.started < leader.started:
                continue
            process.kill()
            killed += 1
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return killed


def wait_gone(pid: int, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs and is not a zombie waiting to be reaped."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True
