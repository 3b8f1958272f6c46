"""Batch state in Redis: created by the gateway, folded by the aggregator, read by anyone.

A batch is one hash (counters, status and a fixed-size latency histogram) and one set of
folded job ids (the exactly-once guard). Both expire ``batch_ttl_s`` after the batch's last
activity (creation, a folded result, done), so a batch that runs for days keeps its state
and an abandoned one leaves nothing behind. This module is the only place that reads or
writes their fields outside the aggregator's fold script.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import cast

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from shared.histogram import LATENCY_BUCKETS
from shared.jobs import JobKind, JobParams
from shared.names import Names

WORKER_FIELD = "worker:"
"""Prefix of the batch-hash fields counting each worker's jobs (the fold script writes them)."""

LATENCY_FIELD = "lat:"
"""Prefix of the batch-hash fields counting the jobs in each latency bucket
(:data:`shared.histogram.LATENCY_BUCKETS`); the fold script writes them."""

LATENCY_MAX_FIELD = "latency_max"
"""The batch's largest latency in ms, kept exactly (the fold script writes it)."""


class BatchState(StrEnum):
    RUNNING = "running"
    DONE = "done"
    ABORTED = "aborted"


class ResultSummary(BaseModel):
    sum: int
    min: int | None
    max: int | None


class LatencySummary(BaseModel):
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


class BatchStatus(BaseModel):
    batch_id: str
    kind: JobKind
    status: BatchState
    expected: int
    completed: int
    failed: int
    params: JobParams
    result: ResultSummary
    latency_ms: LatencySummary
    workers: dict[str, int] = Field(
        default_factory=dict, description="Jobs of this batch each worker instance handled."
    )
    created_at: float
    finished_at: float | None
    duration_s: float | None
    throughput_jobs_s: float | None


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when there are none)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


async def create_batch(
    redis: Redis,
    names: Names,
    *,
    batch_id: str,
    kind: JobKind,
    expected: int,
    params: JobParams,
    ttl_s: int,
) -> float:
    """Record a batch before any of its jobs is published, so no result can miss it."""
    created_at = time.time()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(
            names.batch(batch_id),
            mapping={
                "kind": kind.value,
                "expected": expected,
                "completed": 0,
                "failed": 0,
                "sum": 0,
                "status": BatchState.RUNNING.value,
                "created_at": created_at,
                "n": params.n,
                "io_ms": params.io_ms,
            },
        )
        pipe.expire(names.batch(batch_id), ttl_s)
        pipe.zadd(names.batches_index, {batch_id: created_at})
        pipe.zremrangebyscore(names.batches_index, "-inf", f"({created_at - ttl_s}")
        pipe.expire(names.batches_index, ttl_s)
        await pipe.execute()
    return created_at


async def abort_batch(redis: Redis, names: Names, batch_id: str, *, confirmed: int) -> None:
    """Mark a batch whose publishing failed; only ``confirmed`` of its jobs will ever land."""
    await redis.hset(
        names.batch(batch_id),
        mapping={"status": BatchState.ABORTED.value, "confirmed": confirmed},
    )


class LatencyBucket(BaseModel):
    index: int
    le_ms: float | None = Field(description="Largest latency the bucket holds (None: unbounded).")
    count: int


class BatchLatencies(BaseModel):
    """The latency distribution of a batch's folded jobs: a fixed number of buckets,
    whatever the batch's size, so the answer stays small."""

    batch_id: str
    count: int = Field(description="Jobs folded so far.")
    bucket_floor_ms: float = LATENCY_BUCKETS.floor
    bucket_ratio: float = LATENCY_BUCKETS.ratio
    relative_error: float = Field(
        default=round(LATENCY_BUCKETS.relative_error, 4),
        description="Largest relative distance between a bucket's middle and its values.",
    )
    summary: LatencySummary
    buckets: list[LatencyBucket] = Field(
        description="Non-empty buckets in increasing order; bucket i holds latencies in "
        "(floor * ratio**(i-1), floor * ratio**i] ms. Add them bucket by bucket to merge batches."
    )


async def read_hash(redis: Redis, key: str) -> dict[str, str]:
    """A hash's fields (the client decodes responses to str)."""
    return cast(dict[str, str], await redis.hgetall(key))


def latency_histogram(fields: dict[str, str]) -> dict[int, int]:
    """Bucket index -> jobs, from a batch hash's fields."""
    return {
        int(key.removeprefix(LATENCY_FIELD)): int(value)
        for key, value in fields.items()
        if key.startswith(LATENCY_FIELD)
    }


def summarize_latency_histogram(
    histogram: Mapping[int, int], exact_max: float | None = None
) -> LatencySummary:
    """Percentiles of a latency histogram (one batch's, or several batches' added up)."""
    summary = LATENCY_BUCKETS.summarize(histogram, exact_max=exact_max)
    return LatencySummary(p50=summary.p50, p95=summary.p95, p99=summary.p99, max=summary.max)


def summarize_histogram(fields: dict[str, str]) -> LatencySummary:
    exact_max = float(fields[LATENCY_MAX_FIELD]) if LATENCY_MAX_FIELD in fields else None
    return summarize_latency_histogram(latency_histogram(fields), exact_max)


async def read_latencies(redis: Redis, names: Names, batch_id: str) -> BatchLatencies | None:
    """The batch's latency histogram: as cheap for 100,000 jobs as for 10."""
    fields = await read_hash(redis, names.batch(batch_id))
    if not fields:
        return None
    histogram = latency_histogram(fields)
    return BatchLatencies(
        batch_id=batch_id,
        count=sum(histogram.values()),
        summary=summarize_histogram(fields),
        buckets=[
            LatencyBucket(
                index=index, le_ms=_finite(LATENCY_BUCKETS.upper_bound(index)), count=count
            )
            for index, count in sorted(histogram.items())
        ],
    )


async def read_batch(redis: Redis, names: Names, batch_id: str) -> BatchStatus | None:
    """One read of one hash of bounded size: the cost does not grow with the batch."""
    fields = await read_hash(redis, names.batch(batch_id))
    if not fields:
        return None
    completed = int(fields.get("completed", 0))
    failed = int(fields.get("failed", 0))
    created_at = float(fields["created_at"])
    finished_at = float(fields["finished_at"]) if "finished_at" in fields else None
    duration = finished_at - created_at if finished_at is not None else None
    return BatchStatus(
        batch_id=batch_id,
        kind=JobKind(fields["kind"]),
        status=BatchState(fields["status"]),
        expected=int(fields["expected"]),
        completed=completed,
        failed=failed,
        params=JobParams(n=int(fields.get("n", 2)), io_ms=int(fields.get("io_ms", 0))),
        result=ResultSummary(
            sum=int(fields.get("sum", 0)),
            min=int(fields["min"]) if "min" in fields else None,
            max=int(fields["max"]) if "max" in fields else None,
        ),
        latency_ms=summarize_histogram(fields),
        workers={
            key.removeprefix(WORKER_FIELD): int(value)
            for key, value in fields.items()
            if key.startswith(WORKER_FIELD)
        },
        created_at=created_at,
        finished_at=finished_at,
        duration_s=round(duration, 4) if duration is not None else None,
        throughput_jobs_s=(
            round((completed + failed) / duration, 2) if duration and duration > 0 else None
        ),
    )


def _finite(value: float) -> float | None:
    return None if math.isinf(value) else round(value, 3)


RECENT_BATCHES = 1000


async def count_running_batches(redis: Redis, names: Names, *, recent: int = RECENT_BATCHES) -> int:
    """Running batches among the ``recent`` newest: a live figure whose cost stays bounded.

    Batches older than that window are not looked at; with more than ``recent`` batches
    running at once the figure is a lower bound.
    """
    batch_ids = await redis.zrevrange(names.batches_index, 0, recent - 1)
    if not batch_ids:
        return 0
    async with redis.pipeline(transaction=False) as pipe:
        for batch_id in batch_ids:
            pipe.hget(names.batch(str(batch_id)), "status")
        statuses = await pipe.execute()
    return sum(1 for status in statuses if status == BatchState.RUNNING.value)
