"""SIGTERM: a worker stops taking jobs, finishes those in flight, and leaves the rest queued."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from coordctl.local import restart_member
from coordctl.logview import LogFilter, read_records
from coordctl.servers import wait_gone
from shared.settings import Settings, WorkerMode
from tests.chaos.conftest import Record, batch_status, member_pid, wait_until, worker_stats
from tests.conftest import ClusterFactory
from tests.e2e.conftest import submit, wait_done


def test_sigterm_drains_in_flight_jobs(
    start_cluster: ClusterFactory, settings: Settings, record: Record
) -> None:
    runners = 10
    cluster = start_cluster(workers=1, mode=WorkerMode.BLOCKING, runners=runners, prefetch=runners)
    count = 4 * runners
    batch_id = submit(cluster.gateway_url, "io", count, io_ms=1500)
    wait_until(
        lambda: worker_stats(cluster.gateway_url)["in_flight"] == runners,
        timeout_s=15,
        what="a full set of jobs in flight",
    )

    pid = member_pid(cluster, "worker-1")
    signalled = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    wait_gone(pid, timeout_s=settings.drain_timeout_s + 5)
    drain_s = time.monotonic() - signalled
    assert drain_s < settings.drain_timeout_s

    log = Path(cluster.run_dir) / "logs" / "worker-1.log"
    drained = [r for r in read_records([log], LogFilter()) if r["event"] == "worker_drained"]
    assert drained and drained[-1]["complete"] is True
    assert batch_status(cluster.gateway_url, batch_id)["completed"] == runners

    restart_member(settings, "worker-1")
    status = wait_done(cluster.gateway_url, batch_id, timeout_s=60)
    assert (status["completed"], status["failed"], status["result"]["sum"]) == (
        count,
        0,
        count * 1500,
    )
    record(submitted=count, aggregated=status["completed"], drain_s=round(drain_s, 2))
