"""Batch state in Redis: created by the gateway, folded by the aggregator, read by anyone.

A batch is one hash (counters and status), one set of folded job ids (the exactly-once
guard) and one list of latencies. This module is the only place that reads or writes
their fields outside the aggregator's fold script.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from enum import StrEnum

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from shared.jobs import JobKind, JobParams
from shared.names import Names

WORKER_FIELD = "worker:"
"""Prefix of the batch-hash fields counting each worker's jobs (the fold script writes them)."""


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


def summarize_latencies(values: Sequence[float]) -> LatencySummary:
    ordered = sorted(values)
    return LatencySummary(
        p50=percentile(ordered, 50),
        p95=percentile(ordered, 95),
        p99=percentile(ordered, 99),
        max=ordered[-1] if ordered else None,
    )


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
        await pipe.execute()
    return created_at


async def abort_batch(redis: Redis, names: Names, batch_id: str, *, confirmed: int) -> None:
    """Mark a batch whose publishing failed; only ``confirmed`` of its jobs will ever land."""
    await redis.hset(
        names.batch(batch_id),
        mapping={"status": BatchState.ABORTED.value, "confirmed": confirmed},
    )


class BatchLatencies(BaseModel):
    batch_id: str
    latencies_ms: list[float] = Field(
        description="Submit-to-aggregated latency of every folded job, in the order folded."
    )


async def read_latencies(redis: Redis, names: Names, batch_id: str) -> BatchLatencies | None:
    """Every job's latency, so a client can merge batches or draw the distribution itself."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.exists(names.batch(batch_id))
        pipe.lrange(names.batch_latencies(batch_id), 0, -1)
        exists, latencies = await pipe.execute()
    if not exists:
        return None
    return BatchLatencies(batch_id=batch_id, latencies_ms=[float(v) for v in latencies])


async def read_batch(redis: Redis, names: Names, batch_id: str) -> BatchStatus | None:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(names.batch(batch_id))
        pipe.lrange(names.batch_latencies(batch_id), 0, -1)
        fields, latencies = await pipe.execute()
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
        latency_ms=summarize_latencies([float(v) for v in latencies]),
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
