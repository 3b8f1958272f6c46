"""Helpers for tests that drive a real local cluster through its HTTP API (the one client)."""

from __future__ import annotations

import time
from typing import Any

from coordctl.client import GatewayClient, GatewayError
from shared.api import BatchState
from shared.jobs import BatchRequest, JobKind, JobParams

Batch = dict[str, Any]


def submit(gateway_url: str, kind: str, count: int, *, attempts: int = 1, **params: int) -> str:
    """Submit a batch and return its id; the gateway has confirmed every job by then.

    With ``attempts`` above 1, a ``503`` (the broker did not confirm in time: a refused
    batch, never half-accepted) is retried after its ``Retry-After``, as a client would.
    """
    request = BatchRequest(kind=JobKind(kind), count=count, params=JobParams(**params))
    with GatewayClient(gateway_url) as client:
        for attempt in range(1, attempts + 1):
            try:
                return client.submit(request).batch_id
            except GatewayError as exc:
                if exc.status_code != 503 or attempt == attempts:
                    raise
                time.sleep(exc.retry_after_s or 1.0)
    raise AssertionError("attempts must be at least 1")


def wait_done(gateway_url: str, batch_id: str, *, timeout_s: float = 60) -> Batch:
    """Long-poll the batch until it is done; fail with its last status otherwise.

    A ``503`` (a server of the cluster is briefly away) is retried as its ``Retry-After``
    asks, as any client should.
    """
    with GatewayClient(gateway_url) as client:
        status = client.wait(batch_id, timeout_s=timeout_s, retry_unavailable=True)
    assert status.status == BatchState.DONE, status
    return status.model_dump(mode="json")


def run_batch(gateway_url: str, kind: str, count: int, **params: int) -> Batch:
    return wait_done(gateway_url, submit(gateway_url, kind, count, **params))
