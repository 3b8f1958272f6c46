"""A soak: a steady mixed load well under capacity for a long time, sampled as it runs.

It first measures the cluster's capacity for the mix (one batch of each kind submitted at
once), then offers ``fraction`` of it as small batches on an absolute schedule, every
batch followed to done by a long-poll. Meanwhile a sampler records Redis's memory and key
count, the queue depths, every process's RSS and the time of a status read. At the end,
every job submitted must have been aggregated exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from coordctl.client import AsyncGatewayClient, GatewayError
from coordctl.local import ClusterState
from loadtests.bench.cluster import batch, client_for, member_rss_mb, submit, wait_done
from loadtests.soak.series import Sample
from shared.heartbeat import AggregatorBeat
from shared.names import Names

MIX: dict[str, dict[str, int]] = {
    "cpu": {"n": 20_000, "io_ms": 0},
    "io": {"n": 2, "io_ms": 20},
    "mixed": {"n": 20_000, "io_ms": 10},
}
"""Each kind's parameters; the load offers the same number of jobs of each. An ``io``
step also writes a key that expires after 60 s (``io_touch_keys``)."""

STATUS_READS = 5

Observe = Callable[[Sample], None]


@dataclass
class SoakPlan:
    duration_s: float
    warm_up_s: float
    every_s: float
    fraction: float = 0.6
    tick_s: float = 0.5
    calibration_jobs: int = 300


@dataclass
class Tally:
    """What the load submitted and what came back done."""

    submitted_jobs: int = 0
    submitted_batches: int = 0
    refused_batches: int = 0
    aggregated_jobs: int = 0
    failed_jobs: int = 0
    done_batches: int = 0
    unfinished: list[str] = field(default_factory=list)
    last_batch: str | None = None


async def measure_capacity(client: AsyncGatewayClient, per_kind: int) -> tuple[float, int]:
    """Jobs per second for the mix, from one batch of each kind submitted at once."""
    started = time.perf_counter()
    ids = await asyncio.gather(
        *(submit(client, batch(per_kind, kind=kind, **params)) for kind, params in MIX.items())
    )
    statuses = await asyncio.gather(*(wait_done(client, batch_id) for batch_id in ids))
    elapsed = time.perf_counter() - started
    jobs = sum(s.completed + s.failed for s in statuses)
    if jobs != per_kind * len(MIX):
        raise RuntimeError(f"calibration: {jobs} of {per_kind * len(MIX)} jobs aggregated")
    return jobs / elapsed, jobs


class Soak:
    def __init__(self, state: ClusterState, redis: Redis, names: Names, plan: SoakPlan) -> None:
        self.state = state
        self.redis = redis
        self.prefix = names.redis_prefix
        self.io_prefix = names.io_touch("")
        self.plan = plan
        self.tally = Tally()
        self.samples: list[Sample] = []
        self.followers: set[asyncio.Task[None]] = set()

    async def follow(self, client: AsyncGatewayClient, kind: str, count: int) -> None:
        try:
            batch_id = await submit(client, batch(count, kind=kind, **MIX[kind]))
        except GatewayError:
            self.tally.refused_batches += 1
            return
        self.tally.submitted_jobs += count
        self.tally.submitted_batches += 1
        self.tally.last_batch = batch_id
        try:
            status = await wait_done(client, batch_id, timeout_s=120)
        except GatewayError:
            self.tally.unfinished.append(batch_id)
            return
        self.tally.aggregated_jobs += status.completed + status.failed
        self.tally.failed_jobs += status.failed
        self.tally.done_batches += 1

    async def offer(self, client: AsyncGatewayClient, rate_jobs_s: float) -> None:
        """Submit the mix at ``rate_jobs_s`` for the plan's duration, on an absolute schedule
        so slow answers do not lower the offered rate."""
        tick = self.plan.tick_s
        owed = dict.fromkeys(MIX, 0.0)
        started = time.monotonic()
        for index in range(round(self.plan.duration_s / tick)):
            for kind in MIX:
                owed[kind] += rate_jobs_s / len(MIX) * tick
                count = int(owed[kind])
                if count:
                    owed[kind] -= count
                    task = asyncio.create_task(self.follow(client, kind, count))
                    self.followers.add(task)
                    task.add_done_callback(self.followers.discard)
            await asyncio.sleep(max(0.0, started + (index + 1) * tick - time.monotonic()))

    async def sample(self, client: AsyncGatewayClient, at_s: float) -> Sample:
        values: dict[str, float] = {}
        memory = await self.redis.info("memory")
        values["redis_used_memory_mb"] = round(int(memory["used_memory"]) / 2**20, 3)
        keys = {"batch_keys": 0, "io_touch_keys": 0}
        async for key in self.redis.scan_iter(match=f"{self.prefix}*", count=1000):
            keys["io_touch_keys" if key.startswith(self.io_prefix) else "batch_keys"] += 1
        values.update(keys)
        queues = (await client.instances()).queues
        for name, depth in queues.items():
            values[f"queue:{name.rsplit('.', 1)[-1]}"] = float(depth)
        for name, mb in member_rss_mb(self.state, gateway=True).items():
            values[f"rss_mb:{name}"] = mb
        if self.tally.last_batch is not None:
            timings = []
            for _ in range(STATUS_READS):
                started = time.perf_counter()
                await client.status(self.tally.last_batch)
                timings.append((time.perf_counter() - started) * 1000)
            values["status_read_ms"] = round(statistics.median(timings), 3)
        return Sample(at_s=round(at_s, 2), values=values)

    async def sampler(
        self, client: AsyncGatewayClient, started: float, observe: Observe, stop: asyncio.Event
    ) -> None:
        """Sample until ``stop`` is set: an event rather than a cancellation, which a Redis
        call in progress may absorb (the loop would then sample for ever)."""
        while not stop.is_set():
            sample = await self.sample(client, time.monotonic() - started)
            self.samples.append(sample)
            observe(sample)
            due = started + len(self.samples) * self.plan.every_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, due - time.monotonic()))

    async def run(self, observe: Observe, on_capacity: Callable[[float], None]) -> dict[str, Any]:
        async with client_for(self.state) as client:
            _, pool_warm_up_jobs = await measure_capacity(client, 4)
            capacity, calibration_jobs = await measure_capacity(client, self.plan.calibration_jobs)
            calibration_jobs += pool_warm_up_jobs
            on_capacity(capacity)
            rate = capacity * self.plan.fraction
            started = time.monotonic()
            stop = asyncio.Event()
            sampling = asyncio.create_task(self.sampler(client, started, observe, stop))
            try:
                await self.offer(client, rate)
            finally:
                stop.set()
                await sampling
            if self.followers:
                await asyncio.wait(self.followers)
            folded = await self.aggregator_folded(client, calibration_jobs)
        return {
            "capacity_jobs_s": round(capacity, 2),
            "offered_jobs_s": round(rate, 2),
            "calibration_jobs": calibration_jobs,
            "aggregator_folded": folded,
        }

    @staticmethod
    async def folded_by_aggregators(client: AsyncGatewayClient) -> int:
        beats = (await client.instances()).instances
        return sum(beat.folded for beat in beats if isinstance(beat, AggregatorBeat))

    async def aggregator_folded(self, client: AsyncGatewayClient, calibration_jobs: int) -> int:
        """The aggregator's own count of jobs folded (its heartbeat), once it has caught up
        with every job submitted (or after a few seconds, whatever it says then)."""
        expected = self.tally.submitted_jobs + calibration_jobs
        deadline = time.monotonic() + 10
        folded = -1
        while time.monotonic() < deadline:
            folded = await self.folded_by_aggregators(client)
            if folded >= expected:
                await asyncio.sleep(2)
                return await self.folded_by_aggregators(client)
            await asyncio.sleep(0.5)
        return folded
