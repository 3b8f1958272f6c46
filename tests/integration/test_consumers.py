"""The worker's and the aggregator's consumers, run in-process on real channels.

Each test publishes jobs (or results), runs both consumers until the batch says done, and
then reads the queues: what was acked is gone, retries went through a delay queue, poison
is in the dead-letter queue, and the fold counted every job once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from services.worker.decide import backoff_s
from shared.batches import BatchState, BatchStatus, create_batch, read_batch
from shared.jobs import Job, JobKind, JobParams, decode_job
from shared.names import retry_delay_ms
from shared.settings import Settings
from tests.integration.conftest import InProcessCluster

FAIL_N = 4_099
"""The ``n`` whose CPU step always fails (``fail_n`` of ``JobSteps``)."""


async def new_batch(
    redis: Redis, settings: Settings, kind: JobKind, ns: list[int], io_ms: int = 0
) -> tuple[str, list[Job]]:
    batch_id = uuid.uuid4().hex
    await create_batch(
        redis,
        settings.names,
        batch_id=batch_id,
        kind=kind,
        expected=len(ns),
        params=JobParams(n=ns[0], io_ms=io_ms),
        ttl_s=600,
    )
    jobs = [
        Job(f"{batch_id}.{i}", batch_id, kind, n=n, io_ms=io_ms, submitted_at=time.time())
        for i, n in enumerate(ns)
    ]
    return batch_id, jobs


async def batch_done(redis: Redis, settings: Settings, batch_id: str) -> BatchStatus:
    status = await read_batch(redis, settings.names, batch_id)
    assert status is not None
    return status


def is_done(redis: Redis, settings: Settings, batch_id: str) -> Callable[[], Awaitable[bool]]:
    async def done() -> bool:
        return (await batch_done(redis, settings, batch_id)).status == BatchState.DONE

    return done


async def test_every_job_is_acked_and_folded_once(
    in_process: Callable[..., InProcessCluster], settings: Settings, redis: Redis
) -> None:
    batch_id, jobs = await new_batch(redis, settings, JobKind.MIXED, [10_000] * 20, io_ms=1)
    async with in_process(runners=4) as cluster:
        await cluster.publish([job.encode() for job in jobs])
        await cluster.run_until(is_done(redis, settings, batch_id))
    status = await batch_done(redis, settings, batch_id)
    assert (status.completed, status.failed, status.result.sum) == (20, 0, 20 * 1229)
    assert cluster.worker.completed == 20 and cluster.aggregator.folded == 20
    assert (cluster.worker.retried, cluster.worker.deferred, cluster.worker.failed) == (0, 0, 0)
    depths = await cluster.depths()
    names = settings.names
    assert depths[names.jobs_queue] == depths[names.results_queue] == 0
    assert depths[names.dead_queue] == depths[names.retry_queue] == 0


async def test_a_duplicate_delivery_is_folded_exactly_once(
    in_process: Callable[..., InProcessCluster], settings: Settings, redis: Redis
) -> None:
    """At-least-once delivery: the same job twice runs twice, and is counted once."""
    batch_id, jobs = await new_batch(redis, settings, JobKind.CPU, [1_000 + i for i in range(5)])
    async with in_process(runners=2) as cluster:
        await cluster.publish([job.encode() for job in jobs + jobs])

        async def all_ran() -> bool:
            return cluster.worker.completed == 10 and cluster.aggregator.folded == 5

        async def absorbed() -> bool:
            return cluster.aggregator.duplicates == 5

        await cluster.run_until(all_ran)
        await cluster.run_until(absorbed)
    status = await batch_done(redis, settings, batch_id)
    assert status.status == BatchState.DONE
    assert (status.completed, status.failed, status.expected) == (5, 0, 5)
    depths = await cluster.depths()
    assert depths[settings.names.jobs_queue] == depths[settings.names.results_queue] == 0


async def test_a_failing_job_retries_through_a_delay_queue_then_dead_letters(
    in_process: Callable[..., InProcessCluster], settings: Settings, redis: Redis
) -> None:
    batch_id, jobs = await new_batch(redis, settings, JobKind.CPU, [10_000, FAIL_N, 10_000])
    async with in_process(
        fail_n=FAIL_N, runners=2, max_attempts=3, retry_backoff_s=0.05
    ) as cluster:
        await cluster.publish([job.encode() for job in jobs])
        await cluster.run_until(is_done(redis, settings, batch_id))
    status = await batch_done(redis, settings, batch_id)
    assert (status.completed, status.failed) == (2, 1)
    assert (cluster.worker.retried, cluster.worker.failed, cluster.worker.completed) == (2, 1, 2)
    depths = await cluster.depths()
    names = settings.names
    assert depths[names.dead_queue] == 1  # rejected after its failed result was confirmed
    assert depths[names.jobs_queue] == depths[names.retry_queue] == 0


async def test_a_retry_waits_in_the_delay_queue_of_its_backoff(
    in_process: Callable[..., InProcessCluster], settings: Settings, redis: Redis
) -> None:
    """A long first delay, so the retried job can be seen waiting where the rules put it."""
    rules = settings.replace(retry_backoff_s=10)
    _, jobs = await new_batch(redis, settings, JobKind.CPU, [FAIL_N])
    async with in_process(fail_n=FAIL_N, runners=1, retry_backoff_s=10) as cluster:
        await cluster.publish([jobs[0].encode()])

        async def retried() -> bool:
            return cluster.worker.retried == 1

        await cluster.run_until(retried)
    delay_queue = rules.names.delay_queue(retry_delay_ms(backoff_s(rules, 0)))
    channel = await cluster.amqp.channel()
    try:
        waiting = await (await channel.get_queue(delay_queue)).get(timeout=5)
        assert waiting is not None
        job = decode_job(waiting.body)
        assert (job.job_id, job.attempt, job.deferrals) == (jobs[0].job_id, 2, 0)
        await waiting.ack()
    finally:
        await channel.close()
    assert (await cluster.depths())[settings.names.jobs_queue] == 0


async def test_a_redis_outage_defers_the_job_without_spending_attempts(
    in_process: Callable[..., InProcessCluster], settings: Settings, redis: Redis
) -> None:
    batch_id, jobs = await new_batch(redis, settings, JobKind.IO, [2], io_ms=1)
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        async with in_process(runners=1, max_attempts=1, retry_backoff_s=0.05) as cluster:
            cluster.steps.redis = unreachable
            await cluster.publish([jobs[0].encode()])

            async def deferred_twice() -> bool:
                return cluster.worker.deferred >= 2

            await cluster.run_until(deferred_twice)
            cluster.steps.redis = redis  # Redis is back
            await cluster.run_until(is_done(redis, settings, batch_id))
    finally:
        await unreachable.aclose()
    status = await batch_done(redis, settings, batch_id)
    assert (status.completed, status.failed) == (1, 0)  # one attempt allowed, none spent
    assert (cluster.worker.retried, cluster.worker.failed) == (0, 0)
    depths = await cluster.depths()
    assert depths[settings.names.jobs_queue] == depths[settings.names.dead_queue] == 0


async def test_undecodable_jobs_and_results_are_dead_lettered(
    in_process: Callable[..., InProcessCluster], settings: Settings
) -> None:
    async with in_process(runners=1) as cluster:
        await cluster.publish([b"\xc1not json", b"{}"])
        await cluster.publish_results([b"\xc1"])

        async def all_rejected() -> bool:
            return cluster.worker.dead_lettered == 2 and cluster.aggregator.dead_lettered == 1

        await cluster.run_until(all_rejected)
    assert (cluster.worker.received, cluster.worker.failed) == (0, 0)
    depths = await cluster.depths()
    assert depths[settings.names.dead_queue] == 3
    assert depths[settings.names.jobs_queue] == depths[settings.names.results_queue] == 0
