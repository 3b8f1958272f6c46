import asyncio
import time

from redis.asyncio import Redis

from services.aggregator.fold import ResultFolder
from shared.batches import BatchState, create_batch, read_batch
from shared.jobs import JobKind, JobParams, Result
from shared.settings import Settings


def result(batch_id: str, index: int, value: int = 1229, ok: bool = True) -> Result:
    now = time.time()
    return Result(
        job_id=f"{batch_id}.{index}",
        batch_id=batch_id,
        kind=JobKind.CPU,
        ok=ok,
        value=value,
        submitted_at=now - 0.05,
        finished_at=now,
        worker="w",
    )


async def new_batch(redis: Redis, settings: Settings, batch_id: str, expected: int) -> None:
    await create_batch(
        redis,
        settings.names,
        batch_id=batch_id,
        kind=JobKind.CPU,
        expected=expected,
        params=JobParams(n=10_000),
        ttl_s=600,
    )


async def test_duplicates_count_once_and_last_job_finishes_the_batch(
    settings: Settings, redis: Redis
) -> None:
    await new_batch(redis, settings, "b1", 3)
    folder = ResultFolder(redis, settings.names, ttl_s=600)
    first = await folder.fold([result("b1", 0), result("b1", 0), result("b1", 1, value=7)])
    assert (first.folded, first.duplicates, first.done) == (2, 1, [])
    again = await folder.fold([result("b1", 1, value=7), result("b1", 2, ok=False)])
    assert (again.folded, again.duplicates, again.done) == (1, 1, ["b1"])

    status = await read_batch(redis, settings.names, "b1")
    assert status is not None
    assert status.status == BatchState.DONE
    assert (status.completed, status.failed) == (2, 1)
    assert (status.result.sum, status.result.min, status.result.max) == (1236, 7, 1229)
    assert status.latency_ms.p50 is not None and status.latency_ms.p50 >= 50


async def test_done_is_announced_on_the_channel(settings: Settings, redis: Redis) -> None:
    await new_batch(redis, settings, "b2", 1)
    async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
        await pubsub.subscribe(settings.names.batch_done_channel)
        await ResultFolder(redis, settings.names, ttl_s=600).fold([result("b2", 0)])
        message = await pubsub.get_message(timeout=2)
        for _ in range(10):
            if message is not None:
                break
            message = await pubsub.get_message(timeout=0.5)
    assert message is not None and message["data"] == "b2"


async def test_concurrent_folds_of_the_same_results_count_once(
    settings: Settings, redis: Redis
) -> None:
    await new_batch(redis, settings, "b3", 200)
    folder = ResultFolder(redis, settings.names, ttl_s=600)
    results = [result("b3", i) for i in range(200)]
    outcomes = await asyncio.gather(*(folder.fold(results[k::3] + results) for k in range(4)))
    assert sum(o.folded for o in outcomes) == 200
    assert sum(len(o.done) for o in outcomes) == 1
    status = await read_batch(redis, settings.names, "b3")
    assert status is not None and status.completed == 200 and status.result.sum == 200 * 1229


async def test_results_for_unknown_batches_are_orphans(settings: Settings, redis: Redis) -> None:
    outcome = await ResultFolder(redis, settings.names, ttl_s=600).fold([result("nope", 0)])
    assert (outcome.folded, outcome.orphans) == (0, 1)
