"""The steps of each job kind. I/O steps run on the loop; CPU steps go to the CpuRunner."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

import structlog
from redis.asyncio import Redis

from services.worker.executors import CpuRunner
from services.worker.touches import Touches
from shared.jobs import Job, JobKind
from shared.names import Names
from shared.primes import count_primes

T = TypeVar("T")

log = structlog.get_logger()


class InjectedFault(RuntimeError):
    """Raised by the CPU step of a job chosen by ``COORD_CHAOS_FAIL_N``."""


class JobSteps:
    def __init__(self, redis: Redis, names: Names, cpu: CpuRunner, *, fail_n: int = 0) -> None:
        self.redis = redis
        self.names = names
        self.cpu = cpu
        self.fail_n = fail_n

    @property
    def redis(self) -> Redis:
        return self.touches.redis

    @redis.setter
    def redis(self, redis: Redis) -> None:
        """A new client gets touches of its own: a pipeline never mixes two clients."""
        self.touches = Touches(redis)

    async def io_step(self, job: Job, wait_ms: float) -> None:
        """Wait without blocking, then touch Redis: the shape of a call to another service."""
        if wait_ms > 0:
            await asyncio.sleep(wait_ms / 1000)
        await self.touches.set(self.names.io_touch(job.job_id), job.attempt, px=60_000)

    async def cpu_step(self, job: Job) -> int:
        if self.fail_n and job.n == self.fail_n:
            raise InjectedFault(f"injected failure for n={job.n}")
        return await self.cpu.run(count_primes, job.n)

    async def run(self, job: Job) -> tuple[int, dict[str, float]]:
        """Run the job; return its value and the duration of each step in ms.

        ``mixed`` is an I/O step of ``io_ms``, the CPU step, and another I/O step of ``io_ms``.
        """
        durations: dict[str, float] = {}

        async def timed(name: str, step: Awaitable[T]) -> T:
            started = time.perf_counter()
            value = await step
            durations[name] = round((time.perf_counter() - started) * 1000, 3)
            log.debug("step_finished", step=name, duration_ms=durations[name])
            return value

        if job.kind == JobKind.CPU:
            value = await timed("cpu", self.cpu_step(job))
        elif job.kind == JobKind.IO:
            await timed("io", self.io_step(job, job.io_ms))
            value = job.io_ms
        else:
            await timed("io_before", self.io_step(job, job.io_ms))
            value = await timed("cpu", self.cpu_step(job))
            await timed("io_after", self.io_step(job, job.io_ms))
        return value, durations
