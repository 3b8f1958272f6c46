"""The cluster's own figures: end-to-end throughput, latency at a set rate, and memory."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

from coordctl.client import AsyncGatewayClient
from coordctl.local import ClusterState
from loadtests.bench.latencies import latency_figures
from shared.api import BatchStatus
from shared.jobs import BatchRequest, JobKind, JobParams


@dataclass
class RssSample:
    at_s: float
    mb: dict[str, float]


@dataclass
class MemoryProfile:
    at_rest_mb: dict[str, float]
    samples: list[RssSample] = field(default_factory=list)

    def peak_mb(self) -> dict[str, float]:
        return {
            name: max(sample.mb.get(name, 0.0) for sample in self.samples)
            for name in self.at_rest_mb
        }


WAIT_S = 600.0


def batch(count: int, io_ms: int = 0, *, kind: str = "io", n: int = 2) -> BatchRequest:
    """A batch of ``count`` jobs; by default trivial I/O jobs that measure the pipeline."""
    return BatchRequest(kind=JobKind(kind), count=count, params=JobParams(n=n, io_ms=io_ms))


async def submit(client: AsyncGatewayClient, request: BatchRequest) -> str:
    return (await client.submit(request)).batch_id


async def wait_done(
    client: AsyncGatewayClient, batch_id: str, timeout_s: float = WAIT_S
) -> BatchStatus:
    return await client.wait(batch_id, timeout_s=timeout_s, must_finish=True)


def client_for(state: ClusterState) -> AsyncGatewayClient:
    return AsyncGatewayClient(state.gateway_url, timeout_s=90, max_connections=200)


async def throughput(state: ClusterState, jobs: int) -> float:
    """Jobs per second from the submit of one batch of ``jobs`` trivial jobs to its end."""
    async with client_for(state) as client:
        started = time.perf_counter()
        status = await client.run(batch(jobs), timeout_s=WAIT_S)
        elapsed = time.perf_counter() - started
    if status.completed != jobs:
        raise RuntimeError(f"only {status.completed} of {jobs} jobs completed")
    return jobs / elapsed


async def latency_at_rate(
    state: ClusterState,
    *,
    rate_jobs_s: float,
    seconds: float,
    per_batch: int,
    warmup_s: float = 1.0,
) -> dict[str, Any]:
    """Submit batches at a steady rate; per-job latency (submit to aggregated) percentiles.

    A job's latency runs from the gateway's stamp, taken as it publishes the job, to the start
    of its fold, so a late sender does not lengthen it; how late this process sent its batches
    (``sender_late_ms_p99``) still tells whether the load was as steady as asked.

    Batches of the first ``warmup_s`` seconds are not counted: they measure the pipeline
    filling up (connections opening, the previous run's tail), not its steady state.
    """
    interval = per_batch / rate_jobs_s
    skipped = int(warmup_s / interval)
    seconds += warmup_s
    batch_ids: list[str] = []
    late_ms: list[float] = []
    async with client_for(state) as client:
        started = time.perf_counter()
        pending: list[asyncio.Task[str]] = []
        tick = 0
        while (due := started + tick * interval) < started + seconds:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            late_ms.append((time.perf_counter() - due) * 1000)
            pending.append(asyncio.create_task(submit(client, batch(per_batch))))
            tick += 1
        batch_ids = list(await asyncio.gather(*pending))
        for batch_id in batch_ids:
            await wait_done(client, batch_id)
        merged: Counter[int] = Counter()
        for batch_id in batch_ids[skipped:]:
            merged.update((await client.latencies(batch_id)).histogram())
    return latency_figures(merged, rate_jobs_s=rate_jobs_s, late_ms=late_ms)


def member_rss_mb(state: ClusterState, *, gateway: bool = False) -> dict[str, float]:
    """Resident memory of each worker and the aggregator (a worker's pool processes apart),
    with ``gateway`` the gateway's too."""
    sizes: dict[str, float] = {}
    for member in state.members:
        if member.service == "gateway" and not gateway:
            continue
        try:
            process = psutil.Process(member.pid)
            sizes[member.name] = process.memory_info().rss / 2**20
            children = process.children(recursive=True)
            if children:
                sizes[f"{member.name} pool"] = sum(c.memory_info().rss for c in children) / 2**20
        except psutil.NoSuchProcess:
            continue
    return {name: round(mb, 1) for name, mb in sizes.items()}


async def memory_under_backlog(
    state: ClusterState,
    jobs: int,
    *,
    io_ms: int,
    every_s: float = 0.5,
    on_sample: Callable[[RssSample], None] = lambda _: None,
) -> MemoryProfile:
    """RSS at rest, then over time while ``jobs`` jobs wait or run (far above capacity)."""
    profile = MemoryProfile(at_rest_mb=member_rss_mb(state))
    async with client_for(state) as client:
        started = time.perf_counter()
        batch_id = await submit(client, batch(jobs, io_ms=io_ms))
        done = asyncio.create_task(wait_done(client, batch_id))
        while not done.done():
            sample = RssSample(round(time.perf_counter() - started, 2), member_rss_mb(state))
            profile.samples.append(sample)
            on_sample(sample)
            await asyncio.wait({done}, timeout=every_s)
        status = done.result()
    if status.completed != jobs:
        raise RuntimeError(f"only {status.completed} of {jobs} jobs completed")
    return profile
