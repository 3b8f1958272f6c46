"""Names of the rows the load test adds to Locust's statistics, shared by users and reports."""

from __future__ import annotations

from shared.jobs import JobKind

BATCH_REQUEST_TYPE = "BATCH"
DONE_PREFIX = "/batches [done] "
WAIT_NAME = "/batches/{id}?wait"


def submit_name(kind: JobKind) -> str:
    return f"/batches [{kind.value}]"


def done_name(kind: JobKind) -> str:
    return f"{DONE_PREFIX}{kind.value}"
