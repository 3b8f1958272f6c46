"""Where the CPU step runs, by the worker's mode: the comparison this project exists for."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, TypeVar

from shared.primes import count_primes
from shared.settings import WorkerMode

T = TypeVar("T")


class CpuRunner:
    """Runs CPU steps: on the loop (``blocking``), in threads, or in a process pool.

    ``busy`` counts steps running right now, so pool occupancy can be reported.
    """

    def __init__(self, mode: WorkerMode, pool_size: int) -> None:
        self.mode = mode
        self.pool_size = pool_size
        self.busy = 0
        self.executor: Executor | None = None
        if mode == WorkerMode.THREADS:
            self.executor = ThreadPoolExecutor(pool_size, thread_name_prefix="cpu")
        elif mode == WorkerMode.PROCESSES:
            self.executor = ProcessPoolExecutor(
                pool_size, mp_context=multiprocessing.get_context("spawn")
            )

    async def warm_up(self) -> None:
        """Start every pool process now, so the first jobs do not pay for it."""
        if self.executor is not None:
            await asyncio.gather(*(self.run(count_primes, 100) for _ in range(self.pool_size)))

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        self.busy += 1
        try:
            if self.executor is None:
                return function(*args)
            return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)
        finally:
            self.busy -= 1

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
