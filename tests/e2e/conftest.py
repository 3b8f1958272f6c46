"""Helpers for tests that drive a real local cluster through its HTTP API."""

from __future__ import annotations

import time
from typing import Any

import httpx

Batch = dict[str, Any]


def submit(gateway_url: str, kind: str, count: int, **params: int) -> str:
    """Submit a batch and return its id; the gateway has confirmed every job by then."""
    body = {"kind": kind, "count": count, "params": params}
    answer = httpx.post(f"{gateway_url}/batches", json=body, timeout=30)
    assert answer.status_code == 202, answer.text
    batch_id: str = answer.json()["batch_id"]
    return batch_id


def wait_done(gateway_url: str, batch_id: str, *, timeout_s: float = 60) -> Batch:
    """Long-poll the batch until it is done; fail with its last status otherwise.

    A ``503`` (a server of the cluster is briefly away) is retried as its ``Retry-After``
    asks, as any client should.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        wait_s = max(0.0, min(60.0, deadline - time.monotonic()))
        answer = httpx.get(
            f"{gateway_url}/batches/{batch_id}", params={"wait": wait_s}, timeout=wait_s + 10
        )
        if answer.status_code == 503 and time.monotonic() < deadline:
            time.sleep(min(1.0, float(answer.headers["Retry-After"])))
            continue
        assert answer.status_code == 200, answer.text
        status: Batch = answer.json()
        if status["status"] != "running" or time.monotonic() >= deadline:
            break
    assert status["status"] == "done", status
    return status


def run_batch(gateway_url: str, kind: str, count: int, **params: int) -> Batch:
    return wait_done(gateway_url, submit(gateway_url, kind, count, **params))
