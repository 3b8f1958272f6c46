"""Fault tests: kill, stop and restart real processes and private servers.

Each test records, for its fault, the jobs submitted against the jobs aggregated and how long
recovery took, in ``test-artifacts/chaos.json`` (the figures quoted in the README).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coordctl.local import ClusterState
from coordctl.servers import ServerProcess, stop_process_group, wait_gone

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
Record = Callable[..., None]
Starter = Callable[[], ServerProcess]


@pytest.fixture(scope="session")
def chaos_log() -> Iterator[dict[str, Any]]:
    figures: dict[str, Any] = {}
    yield figures
    if figures:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "chaos.json").write_text(json.dumps(figures, indent=2))


@pytest.fixture
def record(request: pytest.FixtureRequest, chaos_log: dict[str, Any]) -> Record:
    """Keep one fault's figures under the test's name."""

    def keep(**figures: Any) -> None:
        chaos_log[request.node.name] = figures
        print(f"\n{request.node.name}: {figures}")

    return keep


def member_pid(cluster: ClusterState, name: str) -> int:
    reloaded = ClusterState.load(Path(cluster.run_dir))
    assert reloaded is not None
    return next(m.pid for m in reloaded.members if m.name == name)


def kill_hard(pid: int) -> None:
    """``kill -9`` the process and everything in its session (a worker's pool children)."""
    os.killpg(pid, signal.SIGKILL)
    wait_gone(pid, timeout_s=10)


def batch_status(gateway_url: str, batch_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{gateway_url}/batches/{batch_id}", timeout=10)
    assert answer.status_code == 200, answer.text
    status: dict[str, Any] = answer.json()
    return status


def wait_until(
    condition: Callable[[], bool], *, timeout_s: float, what: str, pause_s: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(pause_s)


def wait_progress(gateway_url: str, batch_id: str, at_least: int, timeout_s: float = 60) -> None:
    wait_until(
        lambda: batch_status(gateway_url, batch_id)["completed"] >= at_least,
        timeout_s=timeout_s,
        what=f"{at_least} jobs of {batch_id}",
    )


def instance_stats(gateway_url: str, instance: str) -> dict[str, Any]:
    """The latest heartbeat of one service instance (its live counters)."""
    instances = httpx.get(f"{gateway_url}/instances", timeout=5).json()["instances"]
    stats: dict[str, Any] = next(i for i in instances if i["instance"] == instance)
    return stats


def worker_stats(gateway_url: str, instance: str = "worker-1") -> dict[str, Any]:
    time.sleep(1.2)  # one heartbeat interval, so the figures are current
    return instance_stats(gateway_url, instance)


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[Callable[[Starter], Starter]]:
    """Wrap a server starter so that every instance it starts is stopped afterwards."""
    started: list[ServerProcess] = []

    def tracked(start: Starter) -> Starter:
        def start_and_track() -> ServerProcess:
            server = start()
            started.append(server)
            return server

        return start_and_track

    yield tracked
    for server in reversed(started):
        stop_process_group(server.pid, timeout_s=30)
