"""A broker memory alarm, raised on a private RabbitMQ node this test starts.

An alarm blocks every publishing connection: the broker stops reading from it, so a publish
waits for a confirm that never comes. Publishes are bounded by ``COORD_PUBLISH_TIMEOUT_S``:
the gateway answers 503 in bounded time, and a worker gives its jobs back for redelivery
instead of hanging its runners; once the alarm clears, every job is counted once.
Never run against the shared broker: the alarm is set with rabbitmqctl on the private node.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from coordctl.servers import start_private_rabbitmq
from shared.settings import WorkerMode
from tests.chaos.conftest import (
    Record,
    Starter,
    batch_status,
    instance_stats,
    wait_progress,
    wait_until,
)
from tests.conftest import ClusterFactory, free_port
from tests.e2e.conftest import submit, wait_done

RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
PUBLISH_TIMEOUT_S = 2.0


def private_rabbitmqctl(base: Path, port: int, *args: str) -> None:
    """rabbitmqctl against the private node only: its own node name and Erlang cookie."""
    done = subprocess.run(
        [RABBITMQCTL, "-n", f"coord{port}@localhost", *args],
        env={**os.environ, "HOME": str(base.resolve())},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_memory_alarm_bounds_publishes(
    start_cluster: ClusterFactory,
    private_server: Callable[[Starter], Starter],
    tmp_path: Path,
    record: Record,
) -> None:
    port = free_port()
    run_dir = tmp_path / "broker"
    private_server(lambda: start_private_rabbitmq(run_dir, port))()
    base = run_dir / f"rabbitmq-{port}"
    cluster = start_cluster(
        workers=1,
        mode=WorkerMode.BLOCKING,
        amqp_url=f"amqp://guest:guest@127.0.0.1:{port}/",
        publish_timeout_s=PUBLISH_TIMEOUT_S,
        runners=4,  # about 80 jobs/s: the batch is still running when the alarm is up
    )
    url = cluster.gateway_url
    count = 2000
    # A fresh private node on a busy machine may confirm 2,000 jobs slower than the
    # publish timeout: that refusal is the feature, not the alarm, so it is retried.
    batch_id = submit(url, "io", count, attempts=5, io_ms=50)
    wait_progress(url, batch_id, 20)

    private_rabbitmqctl(base, port, "set_vm_memory_high_watermark", "0.0001")
    alarmed_at = time.monotonic()
    try:
        assert batch_status(url, batch_id)["status"] == "running"
        started = time.monotonic()
        refused = httpx.post(f"{url}/batches", json={"kind": "io", "count": 5}, timeout=60)
        answered_s = time.monotonic() - started
        assert refused.status_code == 503, refused.text
        assert answered_s < 3 * PUBLISH_TIMEOUT_S + 5, answered_s
        wait_until(
            lambda: instance_stats(url, "worker-1")["publish_refused"] > 0,
            timeout_s=30,
            what="the worker to give jobs back instead of hanging",
        )
    finally:
        private_rabbitmqctl(base, port, "set_vm_memory_high_watermark", "0.4")
    status = wait_done(url, batch_id, timeout_s=180)
    assert (status["completed"], status["failed"]) == (count, 0)
    record(
        submitted=count,
        aggregated=status["completed"],
        gateway_503_after_s=round(answered_s, 2),
        recovery_s=round(time.monotonic() - alarmed_at, 2),
    )
