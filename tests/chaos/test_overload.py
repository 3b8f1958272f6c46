"""Overload: above the backlog limit the gateway refuses new work; nothing accepted is lost."""

from __future__ import annotations

import time

import httpx

from shared.settings import WorkerMode
from tests.chaos.conftest import Record, wait_until
from tests.conftest import ClusterFactory
from tests.e2e.conftest import submit, wait_done


def jobs_waiting(gateway_url: str, queue: str) -> int:
    depth: int = httpx.get(f"{gateway_url}/instances", timeout=5).json()["queues"][queue]
    return depth


def test_backlog_limit_refuses_then_recovers(start_cluster: ClusterFactory, record: Record) -> None:
    limit = 300
    cluster = start_cluster(
        workers=1, mode=WorkerMode.BLOCKING, max_backlog=limit, runners=20, prefetch=20
    )
    url = cluster.gateway_url
    first = submit(url, "io", 1000, io_ms=100)
    jobs_queue = f"{cluster.namespace}.jobs"
    wait_until(lambda: jobs_waiting(url, jobs_queue) > limit, timeout_s=10, what="a deep queue")

    refused = httpx.post(f"{url}/batches", json={"kind": "io", "count": 10}, timeout=10)
    assert refused.status_code == 503
    assert int(refused.headers["Retry-After"]) >= 1
    assert "backlog" in refused.json()["detail"]

    accepted: list[str] = [first]
    refusals = 1
    started = time.monotonic()
    while len(accepted) < 3:
        answer = httpx.post(
            f"{url}/batches", json={"kind": "io", "count": 10, "params": {"io_ms": 1}}, timeout=10
        )
        if answer.status_code == 202:
            accepted.append(answer.json()["batch_id"])
        else:
            assert answer.status_code == 503, answer.text
            refusals += 1
            time.sleep(0.2)
        assert time.monotonic() - started < 60, "the backlog never drained"

    statuses = [wait_done(url, batch_id, timeout_s=60) for batch_id in accepted]
    assert [s["completed"] for s in statuses] == [1000, 10, 10]
    record(
        submitted=sum(s["expected"] for s in statuses),
        aggregated=sum(s["completed"] for s in statuses),
        refused_requests=refusals,
        recovery_s=round(time.monotonic() - started, 2),
    )
