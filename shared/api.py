"""The gateway's HTTP contract: its paths and the model of every answer.

The gateway answers with these models and :mod:`coordctl.client` parses with the same ones,
so a field renamed on one side fails the other's tests, not a user's run. The request body,
:class:`shared.jobs.BatchRequest`, lives beside the jobs it becomes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from shared.heartbeat import AnyBeat
from shared.histogram import LATENCY_BUCKETS
from shared.jobs import JobKind, JobParams


class Paths:
    """Every path the gateway serves to clients; ``{batch_id}`` is filled with :meth:`of`."""

    BATCHES = "/batches"
    BATCH = "/batches/{batch_id}"
    LATENCIES = "/batches/{batch_id}/latencies"
    HEALTH = "/healthz"
    READINESS = "/readyz"
    INSTANCES = "/instances"

    @staticmethod
    def of(template: str, batch_id: str) -> str:
        return template.format(batch_id=batch_id)


API_KEY_HEADER = "X-API-Key"
TRACE_ID_HEADER = "X-Trace-Id"
MAX_WAIT_S = 60.0
"""The longest long-poll a status request may ask for (``?wait=S``)."""


class BatchState(StrEnum):
    """A batch's state, as its hash stores it and every status answer reports it."""

    RUNNING = "running"
    DONE = "done"
    ABORTED = "aborted"


class BatchAccepted(BaseModel):
    """The ``202`` to ``POST /batches``: every job of the batch is confirmed by the broker."""

    batch_id: str
    kind: JobKind
    expected: int
    status: BatchState
    status_url: str
    trace_id: str
    publish_ms: float


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

    def histogram(self) -> dict[int, int]:
        """Bucket index -> jobs, the form that adds across batches."""
        return {bucket.index: bucket.count for bucket in self.buckets}


class Health(BaseModel):
    status: str = "ok"


class Readiness(BaseModel):
    """``/readyz``: ``200`` when every dependency answers, ``503`` with the same body if not."""

    status: str
    checks: dict[str, bool]

    @classmethod
    def of(cls, checks: dict[str, bool]) -> Readiness:
        return cls(status="ready" if all(checks.values()) else "unavailable", checks=checks)

    @property
    def ready(self) -> bool:
        return all(self.checks.values())


class Instances(BaseModel):
    """``/instances``: every service instance's heartbeat and the queue depths."""

    instances: list[AnyBeat]
    queues: dict[str, int]


class ErrorAnswer(BaseModel):
    """The body of every refusal: a sentence, or FastAPI's list of invalid fields (422)."""

    detail: str | list[dict[str, Any]]
