"""Broker and Redis outages, against private instances this test starts on its own ports.

The shared servers on the machine are never touched: each test runs its own RabbitMQ node
(own node name, port and data directory) or Redis, stops it mid-batch and starts it again on
the same data, and checks that the batch in flight finishes with every job counted once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from coordctl.servers import (
    start_private_rabbitmq,
    start_private_redis,
    stop_process_group,
)
from shared.settings import WorkerMode
from tests.chaos.conftest import Record, Starter, wait_progress, wait_until
from tests.conftest import ClusterFactory, free_port
from tests.e2e.conftest import run_batch, submit, wait_done


def answer_to_submit(gateway_url: str) -> httpx.Response:
    return httpx.post(f"{gateway_url}/batches", json={"kind": "io", "count": 1}, timeout=15)


def ready(gateway_url: str) -> bool:
    try:
        return httpx.get(f"{gateway_url}/readyz", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def test_broker_restart(
    start_cluster: ClusterFactory,
    private_server: Callable[[Starter], Starter],
    tmp_path: Path,
    record: Record,
) -> None:
    port = free_port()
    start_broker = private_server(lambda: start_private_rabbitmq(tmp_path / "broker", port))
    broker = start_broker()
    cluster = start_cluster(
        workers=1,
        mode=WorkerMode.PROCESSES,
        pool_size=1,
        amqp_url=f"amqp://guest:guest@127.0.0.1:{port}/",
    )
    url = cluster.gateway_url
    count = 800
    batch_id = submit(url, "cpu", count, n=10_000)
    wait_progress(url, batch_id, count // 8)

    stopped_at = time.monotonic()
    stop_process_group(broker.pid, timeout_s=60)
    wait_until(lambda: answer_to_submit(url).status_code == 503, timeout_s=15, what="a 503")
    refused = answer_to_submit(url)
    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1
    assert not ready(url)

    start_broker()
    wait_until(lambda: ready(url), timeout_s=90, what="the services to reconnect", pause_s=0.5)
    reconnected_s = time.monotonic() - stopped_at
    status = wait_done(url, batch_id, timeout_s=120)
    assert (status["completed"], status["failed"]) == (count, 0)
    assert status["result"]["sum"] == count * 1229

    after = run_batch(url, "cpu", 20, n=10_000)
    assert (after["completed"], after["result"]["sum"]) == (20, 20 * 1229)
    record(
        submitted=count,
        aggregated=status["completed"],
        reconnected_s=round(reconnected_s, 2),
        recovery_s=round(time.monotonic() - stopped_at, 2),
    )


def test_redis_restart(
    start_cluster: ClusterFactory,
    private_server: Callable[[Starter], Starter],
    tmp_path: Path,
    record: Record,
) -> None:
    port = free_port()
    start_redis = private_server(
        lambda: start_private_redis(tmp_path / "redis", port, persistent=True)
    )
    redis = start_redis()
    cluster = start_cluster(
        workers=1, mode=WorkerMode.BLOCKING, redis_url=f"redis://127.0.0.1:{port}/0"
    )
    url = cluster.gateway_url
    count = 3000
    batch_id = submit(url, "io", count, io_ms=2)
    wait_progress(url, batch_id, count // 10)

    stopped_at = time.monotonic()
    stop_process_group(redis.pid, timeout_s=15)
    wait_until(lambda: answer_to_submit(url).status_code == 503, timeout_s=20, what="a 503")
    time.sleep(2)
    start_redis()
    wait_until(lambda: ready(url), timeout_s=60, what="the services to reconnect", pause_s=0.5)
    reconnected_s = time.monotonic() - stopped_at
    status = wait_done(url, batch_id, timeout_s=120)
    assert (status["completed"], status["failed"]) == (count, 0)
    assert status["result"]["sum"] == 2 * count

    after = run_batch(url, "io", 20, io_ms=1)
    assert after["completed"] == 20
    record(
        submitted=count,
        aggregated=status["completed"],
        reconnected_s=round(reconnected_s, 2),
        recovery_s=round(time.monotonic() - stopped_at, 2),
    )
