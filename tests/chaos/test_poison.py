"""Messages that cannot be processed end in the dead-letter queue; the worker keeps serving."""

from __future__ import annotations

import asyncio
import time

import orjson

from shared.messaging import connect_amqp, make_message, publish_many_confirmed
from shared.settings import Settings, WorkerMode
from tests.chaos.conftest import Record, wait_until, worker_stats
from tests.conftest import ClusterFactory
from tests.e2e.conftest import run_batch

VALID_JOB = {
    "job_id": "poison.0",
    "batch_id": "poison",
    "kind": "cpu",
    "n": 100,
    "io_ms": 0,
    "submitted_at": 0.0,
}
POISON = [
    b"not json at all",
    b"[1, 2, 3]",
    orjson.dumps({k: v for k, v in VALID_JOB.items() if k != "job_id"}),
    orjson.dumps({**VALID_JOB, "kind": "gpu"}),
    orjson.dumps({**VALID_JOB, "n": "many"}),
    orjson.dumps({**VALID_JOB, "n": 10**12}),
]


async def publish_raw(settings: Settings, bodies: list[bytes]) -> None:
    connection = await connect_amqp(settings, attempts=3)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        items = [(settings.names.jobs_queue, make_message(body)) for body in bodies]
        await publish_many_confirmed(channel.default_exchange, items, window=64, timeout_s=30)


async def dead_letters(settings: Settings) -> list[bytes]:
    """Read (and ack) what the dead-letter queue holds."""
    connection = await connect_amqp(settings, attempts=3)
    bodies: list[bytes] = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(settings.names.dead_queue)
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            bodies.append(message.body)
    return bodies


def test_undecodable_messages_are_dead_lettered_at_once(
    start_cluster: ClusterFactory, settings: Settings, record: Record
) -> None:
    cluster = start_cluster(workers=1, mode=WorkerMode.THREADS)
    started = time.monotonic()
    asyncio.run(publish_raw(settings, POISON))
    wait_until(
        lambda: worker_stats(cluster.gateway_url)["dead_lettered"] == len(POISON),
        timeout_s=15,
        what="the poison messages to be dead-lettered",
    )
    elapsed = time.monotonic() - started
    assert sorted(asyncio.run(dead_letters(settings))) == sorted(POISON)

    after = run_batch(cluster.gateway_url, "cpu", 10, n=10_000)
    assert (after["completed"], after["result"]["sum"]) == (10, 12_290)
    stats = worker_stats(cluster.gateway_url)
    assert stats["retried"] == 0
    record(poison=len(POISON), dead_lettered=stats["dead_lettered"], seconds=round(elapsed, 2))


def test_failing_step_is_retried_then_dead_lettered_and_counted(
    start_cluster: ClusterFactory, settings: Settings, record: Record
) -> None:
    fail_n = 4_999
    cluster = start_cluster(
        workers=1, mode=WorkerMode.BLOCKING, chaos_fail_n=fail_n, retry_backoff_s=0.05
    )
    failing = run_batch(cluster.gateway_url, "cpu", 5, n=fail_n)
    assert (failing["completed"], failing["failed"], failing["status"]) == (0, 5, "done")

    healthy = run_batch(cluster.gateway_url, "cpu", 10, n=10_000)
    assert (healthy["completed"], healthy["failed"]) == (10, 0)

    stats = worker_stats(cluster.gateway_url)
    assert (stats["retried"], stats["failed"]) == (5 * (settings.max_attempts - 1), 5)
    dead = [orjson.loads(body) for body in asyncio.run(dead_letters(settings))]
    assert sorted(job["job_id"] for job in dead) == sorted(
        f"{failing['batch_id']}.{index}" for index in range(5)
    )
    assert {job["attempt"] for job in dead} == {settings.max_attempts}
    record(
        submitted=5,
        failed=failing["failed"],
        retried=stats["retried"],
        dead_lettered=len(dead),
    )
