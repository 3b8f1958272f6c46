"""Processes killed with SIGKILL mid-batch: every job is still aggregated exactly once."""

from __future__ import annotations

import time

import psutil

from coordctl.local import restart_member
from shared.settings import Settings, WorkerMode
from tests.chaos.conftest import Record, kill_hard, member_pid, wait_progress, worker_stats
from tests.conftest import ClusterFactory
from tests.e2e.conftest import submit, wait_done


def test_worker_killed_mid_batch(start_cluster: ClusterFactory, record: Record) -> None:
    cluster = start_cluster(workers=2, mode=WorkerMode.PROCESSES, pool_size=1)
    count = 1500
    batch_id = submit(cluster.gateway_url, "cpu", count, n=10_000)
    wait_progress(cluster.gateway_url, batch_id, count // 5)

    killed_at = time.monotonic()
    kill_hard(member_pid(cluster, "worker-1"))
    status = wait_done(cluster.gateway_url, batch_id, timeout_s=90)

    assert (status["completed"], status["failed"]) == (count, 0)
    assert status["result"]["sum"] == count * 1229
    record(
        submitted=count,
        aggregated=status["completed"],
        recovery_s=round(time.monotonic() - killed_at, 2),
        by_worker=status["workers"],
    )


def test_aggregator_killed_and_restarted(
    start_cluster: ClusterFactory, settings: Settings, record: Record
) -> None:
    cluster = start_cluster(workers=1, mode=WorkerMode.BLOCKING)
    count = 4000
    batch_id = submit(cluster.gateway_url, "io", count, io_ms=1)
    wait_progress(cluster.gateway_url, batch_id, count // 5)

    killed_at = time.monotonic()
    kill_hard(member_pid(cluster, "aggregator"))
    time.sleep(1)
    restart_member(settings, "aggregator")
    status = wait_done(cluster.gateway_url, batch_id, timeout_s=90)

    assert (status["completed"], status["failed"]) == (count, 0)
    assert status["result"]["sum"] == count
    record(
        submitted=count,
        aggregated=status["completed"],
        recovery_s=round(time.monotonic() - killed_at, 2),
    )


def test_pool_process_killed_mid_batch(start_cluster: ClusterFactory, record: Record) -> None:
    """A dead pool child breaks the whole pool; the worker replaces it and retries the jobs."""
    cluster = start_cluster(workers=1, mode=WorkerMode.PROCESSES, pool_size=2)
    count = 600
    batch_id = submit(cluster.gateway_url, "cpu", count, n=10_000)
    wait_progress(cluster.gateway_url, batch_id, count // 5)

    children = psutil.Process(member_pid(cluster, "worker-1")).children()
    pool_child = next(c for c in children if "spawn_main" in " ".join(c.cmdline()))
    killed_at = time.monotonic()
    pool_child.kill()
    status = wait_done(cluster.gateway_url, batch_id, timeout_s=90)

    assert (status["completed"], status["failed"]) == (count, 0)
    assert status["result"]["sum"] == count * 1229
    assert worker_stats(cluster.gateway_url)["pools_replaced"] == 1
    record(
        submitted=count,
        aggregated=status["completed"],
        recovery_s=round(time.monotonic() - killed_at, 2),
    )
