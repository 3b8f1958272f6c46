"""`cluster down` signals only what it started: a stale state file's pid may be anyone's now.

Each test starts its own unrelated ``setsid sleep``, points a state file at it, and stops it
itself afterwards.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordctl.local import ClusterState, Member, cluster_status, stop_local_cluster
from coordctl.servers import ProcessIdentity, ServerProcess, pid_alive, stop_process_group


@pytest.fixture
def unrelated() -> Iterator[subprocess.Popen[bytes]]:
    """A process in a session of its own that no cluster started."""
    process = subprocess.Popen(["setsid", "sleep", "300"])
    for _ in range(100):
        identity = ProcessIdentity.of(process.pid)
        if identity is not None and identity.command == ("sleep", "300"):
            break
        time.sleep(0.02)
    yield process
    process.kill()
    process.wait(timeout=10)


def state_file(run_dir: Path, members: list[Member], servers: list[ServerProcess]) -> None:
    ClusterState(
        namespace="stale",
        gateway_url="http://127.0.0.1:1",
        mode="processes",
        workers=1,
        pool_size=1,
        run_dir=str(run_dir),
        env={},
        members=members,
        servers=servers,
    ).save()


def test_a_reused_pid_is_not_running_and_gets_no_signal(
    tmp_path: Path, unrelated: subprocess.Popen[bytes]
) -> None:
    pid = unrelated.pid
    started = ProcessIdentity.of(pid)
    assert started is not None
    # The gateway we once started had this pid, a different start time and command.
    gateway = Member(
        "gateway", "gateway", pid, "gateway.log", 0, started.started - 3600, ["python", "-m"]
    )
    legacy = Member("worker-1", "worker", pid, "worker.log")  # a state file without identities
    server = ServerProcess("redis", pid, 6390, "redis.log", started.started - 60, ["redis-server"])
    state_file(tmp_path, [gateway, legacy], [server])

    report = cluster_status(tmp_path)
    assert report is not None
    assert [m["alive"] for m in report["members"]] == [False, False]
    assert [s["alive"] for s in report["servers"]] == [False]
    assert stop_local_cluster(tmp_path, timeout_s=2) == []
    time.sleep(0.3)
    assert unrelated.poll() is None and pid_alive(pid)
    assert not (tmp_path / "cluster.json").exists()


def test_the_process_it_started_is_stopped(
    tmp_path: Path, unrelated: subprocess.Popen[bytes]
) -> None:
    identity = ProcessIdentity.of(unrelated.pid)
    assert identity is not None
    ours = Member(
        "worker-1", "worker", unrelated.pid, "w.log", 0, identity.started, list(identity.command)
    )
    state_file(tmp_path, [ours], [])
    assert ours.alive
    assert stop_local_cluster(tmp_path, timeout_s=5) == ["worker-1"]
    unrelated.wait(timeout=10)
    assert not pid_alive(unrelated.pid)


def test_stop_process_group_checks_the_identity_it_is_given(
    unrelated: subprocess.Popen[bytes],
) -> None:
    other = ProcessIdentity(1.0, ("python", "-m", "services.worker"))
    assert stop_process_group(unrelated.pid, timeout_s=1, expected=other)
    assert unrelated.poll() is None
