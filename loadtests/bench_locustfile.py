"""Locust users for the gateway benchmark: closed loop, no think time, the smallest batch.

Each user sends its next ``POST /batches`` as soon as the previous one is answered, so the
request rate is what the server sustains at that many concurrent clients.
"""

from __future__ import annotations

from locust import FastHttpUser, constant, task

BODY = {"kind": "io", "count": 1, "params": {"io_ms": 0}}


class Submitter(FastHttpUser):
    wait_time = constant(0)
    connection_timeout = 10.0
    network_timeout = 30.0

    @task
    def submit(self) -> None:
        with self.client.post("/batches", json=BODY, catch_response=True) as response:
            if response.status_code != 202:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
