"""Helpers for tests that drive a real local cluster through its HTTP API (the one client)."""

from __future__ import annotations

from typing import Any

from coordctl.client import GatewayClient
from shared.api import BatchState
from shared.jobs import BatchRequest, JobKind, JobParams

Batch = dict[str, Any]


def submit(gateway_url: str, kind: str, count: int, **params: int) -> str:
    """Submit a batch and return its id; the gateway has confirmed every job by then."""
    request = BatchRequest(kind=JobKind(kind), count=count, params=JobParams(**params))
    with GatewayClient(gateway_url) as client:
        return client.submit(request).batch_id


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
