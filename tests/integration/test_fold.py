import asyncio
import time

from redis.asyncio import Redis

from coordctl.namespace import purge_namespace
from services.aggregator.fold import ResultFolder
from shared.batches import BatchState, abort_batch, create_batch, read_batch
from shared.histogram import LATENCY_BUCKETS
from shared.jobs import JobKind, JobParams, Result
from shared.names import Names
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


async def test_percentiles_come_from_the_histogram_within_its_error(
    settings: Settings, redis: Redis
) -> None:
    """Latencies of 1..2000 ms: p50, p95, p99 within the buckets' 4.9%; max exact."""
    await new_batch(redis, settings, "h1", 2001)
    folder = ResultFolder(redis, settings.names, ttl_s=600)
    now = time.time()
    results = [
        Result(f"h1.{i}", "h1", JobKind.CPU, True, 1, now - i / 1000, now, "w")
        for i in range(1, 2001)
    ]
    for start in range(0, 2000, 500):
        await folder.fold(results[start : start + 500])
    status = await read_batch(redis, settings.names, "h1")
    assert status is not None
    error = LATENCY_BUCKETS.relative_error
    spent_ms = (time.time() - now) * 1000
    for got, exact in ((status.latency_ms.p50, 1000), (status.latency_ms.p99, 1980)):
        assert got is not None
        assert exact * (1 - error) <= got <= (exact + spent_ms) * (1 + error)
    assert status.latency_ms.max is not None
    assert 2000 <= status.latency_ms.max <= 2000 + spent_ms


async def test_no_key_of_a_batch_that_a_status_read_touches_grows_with_its_jobs(
    settings: Settings, redis: Redis
) -> None:
    """Only the exactly-once guard (never read by a status read) holds one entry per job."""
    await new_batch(redis, settings, "big", 10_000)
    folder = ResultFolder(redis, settings.names, ttl_s=600)
    now = time.time()
    for start in range(0, 5000, 500):
        await folder.fold(
            [
                Result(f"big.{i}", "big", JobKind.CPU, True, 1, now - i / 100, now, f"w{i % 3}")
                for i in range(start, start + 500)
            ]
        )
    sizes = {}
    async for key in redis.scan_iter(match=f"{settings.names.batch('big')}*"):
        kind = await redis.type(key)
        sizes[key] = {"hash": redis.hlen, "list": redis.llen, "set": redis.scard}[kind]
        sizes[key] = await sizes[key](key)
    assert sizes.pop(settings.names.batch_seen("big")) == 5000
    assert sizes and all(size <= LATENCY_BUCKETS.buckets + 20 for size in sizes.values()), sizes


async def test_an_out_of_range_value_is_refused_before_anything_is_written(
    settings: Settings, redis: Redis
) -> None:
    """2**63 used to fail HINCRBY halfway through the script, keeping the writes before it."""
    await new_batch(redis, settings, "p1", 3)
    folder = ResultFolder(redis, settings.names, ttl_s=600)
    slice_ = [result("p1", 0), result("p1", 1, value=2**63), result("p1", 2, value=-5)]
    outcome = await folder.fold(slice_)
    assert (outcome.folded, outcome.invalid) == (1, [1, 2])
    status = await read_batch(redis, settings.names, "p1")
    assert status is not None
    assert (status.completed, status.result.sum, status.status) == (1, 1229, BatchState.RUNNING)
    assert not await redis.sismember(settings.names.batch_seen("p1"), "p1.1")
    again = await folder.fold(slice_)
    assert (again.folded, again.duplicates, again.invalid) == (0, 1, [1, 2])


async def test_state_of_a_running_batch_expires_from_its_last_activity(
    settings: Settings, redis: Redis
) -> None:
    """A TTL counted from creation dropped a batch mid-run; now each fold renews it, and
    the exactly-once guard has one too, even when the batch never finishes."""
    await create_batch(
        redis,
        settings.names,
        batch_id="long",
        kind=JobKind.CPU,
        expected=10,
        params=JobParams(n=10_000),
        ttl_s=3,
    )
    folder = ResultFolder(redis, settings.names, ttl_s=3)
    for index in range(3):
        await asyncio.sleep(1.5)
        outcome = await folder.fold([result("long", index)])
        assert (outcome.folded, outcome.orphans) == (1, 0), (
            f"fold {index} after {1.5 * (index + 1)}s"
        )
    for key in (settings.names.batch("long"), settings.names.batch_seen("long")):
        assert 0 < await redis.ttl(key) <= 3
    await abort_batch(redis, settings.names, "long", confirmed=3)
    await asyncio.sleep(3.5)
    assert await redis.exists(settings.names.batch("long"), settings.names.batch_seen("long")) == 0
    assert await read_batch(redis, settings.names, "long") is None


async def test_the_batches_index_keeps_only_batches_that_may_still_exist(
    settings: Settings, redis: Redis
) -> None:
    index = settings.names.batches_index
    await redis.zadd(index, {"ancient": time.time() - 7200})
    await new_batch(redis, settings, "fresh", 1)
    assert await redis.zrange(index, 0, -1) == ["fresh"]
    assert 0 < await redis.ttl(index) <= 600


async def test_a_slice_folds_as_its_results_one_by_one(settings: Settings, redis: Redis) -> None:
    """Each batch's sums of a slice go into its hash at once: the same hash as folding the
    results one per slice, across batches, workers, failures, duplicates and an orphan."""
    alone_settings = settings.replace(namespace=f"{settings.namespace}alone")
    try:
        await compare_slices(redis, settings.names, alone_settings.names)
    finally:
        await purge_namespace(alone_settings)


async def compare_slices(redis: Redis, names: Names, alone_names: Names) -> None:
    sliced = ResultFolder(redis, names, ttl_s=600)
    alone = ResultFolder(redis, alone_names, ttl_s=600)
    now = time.time()
    # Latencies at bucket middles from 30 s up: the test's own run time moves none of them.
    middles = [LATENCY_BUCKETS.value(LATENCY_BUCKETS.index(30_000.0) + 3 * i) for i in range(6)]
    results = [
        Result(
            job_id=f"{batch}.{i}",
            batch_id=batch,
            kind=JobKind.CPU,
            ok=i % 4 != 3,
            value=0 if i % 4 == 3 else (i * 37) % 11 + 2,
            submitted_at=now - middles[i % 6] / 1000,
            finished_at=now,
            worker=f"w{i % 3}",
        )
        for i in range(24)
        for batch in ("s1", "s2")
    ]
    results += [results[5], results[30], result("gone", 0)]  # duplicates and an orphan
    for space in (names, alone_names):
        for batch in ("s1", "s2"):
            await create_batch(
                redis,
                space,
                batch_id=batch,
                kind=JobKind.CPU,
                expected=24,
                params=JobParams(n=10_000),
                ttl_s=600,
            )
    outcomes = [await sliced.fold(results[k : k + 10]) for k in range(0, len(results), 10)]
    singles = [await alone.fold([r]) for r in results]
    for totals in (outcomes, singles):
        assert sum(o.folded for o in totals) == 48
        assert sum(o.duplicates for o in totals) == 2
        assert sum(o.orphans for o in totals) == 1
        assert sorted(b for o in totals for b in o.done) == ["s1", "s2"]
    for batch in ("s1", "s2"):
        got = await redis.hgetall(names.batch(batch))
        want = await redis.hgetall(alone_names.batch(batch))
        for field in ("created_at", "finished_at", "latency_max"):
            assert abs(float(got.pop(field)) - float(want.pop(field))) < 5_000
        assert got == want
        status = await read_batch(redis, names, batch)
        assert status is not None and status.status == BatchState.DONE
        ok_values = [r.value for r in results[:48] if r.batch_id == batch and r.ok]
        assert (status.completed, status.failed) == (len(ok_values), 24 - len(ok_values))
        assert status.result.sum == sum(ok_values)
        assert (status.result.min, status.result.max) == (min(ok_values), max(ok_values))
