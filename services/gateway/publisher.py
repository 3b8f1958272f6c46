"""Turning an accepted batch into confirmed job messages."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

from aio_pika.abc import AbstractExchange

from shared.jobs import BatchRequest, Job
from shared.messaging import Outgoing, PublishProgress, publish_many_confirmed
from shared.names import Names


def new_batch_id() -> str:
    return uuid.uuid4().hex


def job_messages(
    names: Names, batch_id: str, request: BatchRequest, trace_id: str
) -> Iterator[tuple[str, Outgoing]]:
    """One persistent message per job, built lazily so a large batch is never all in memory.

    The job's ids travel in its body only, as a result's do: every reader decodes the body
    anyway, and a headers table costs the broker on every message
    (``python -m loadtests.bench.headers``)."""
    for index in range(request.count):
        job = Job(
            job_id=f"{batch_id}.{index}",
            batch_id=batch_id,
            kind=request.kind,
            n=request.params.n,
            io_ms=request.params.io_ms,
            submitted_at=time.time(),
            trace_id=trace_id,
        )
        yield names.jobs_queue, Outgoing.json(job.encode(), message_id=job.job_id)


async def publish_batch(
    exchange: AbstractExchange,
    names: Names,
    batch_id: str,
    request: BatchRequest,
    *,
    trace_id: str,
    window: int,
    timeout_s: float,
    progress: PublishProgress | None = None,
) -> int:
    """Publish every job of the batch; returns only when all are confirmed (or raises)."""
    return await publish_many_confirmed(
        exchange,
        job_messages(names, batch_id, request, trace_id),
        window=window,
        timeout_s=timeout_s,
        progress=progress,
    )
