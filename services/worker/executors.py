"""Where the CPU step runs, by the worker's mode: the comparison this project exists for."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import structlog

from services.worker.process_pool import LoopProcessPool
from services.worker.subinterpreters import interpreter_pool
from shared.primes import count_primes
from shared.settings import WorkerMode

T = TypeVar("T")

log = structlog.get_logger()


class CpuRunner:
    """Runs CPU steps: on the loop (``blocking``), in threads, in a process pool, or in
    subinterpreters (``interpreters``; :class:`ModeUnavailable` where this Python has none).

    ``busy`` counts steps running right now, so pool occupancy can be reported. A process
    pool whose child dies is broken for good; the runner replaces it, and the steps that
    were running on it fail, so their jobs are retried instead of the worker failing every
    job from then on.
    """

    def __init__(self, mode: WorkerMode, pool_size: int) -> None:
        self.mode = mode
        self.pool_size = pool_size
        self.busy = 0
        self.pools_replaced = 0
        self.executor: Executor | LoopProcessPool | None = self._new_executor()

    def _new_executor(self) -> Executor | LoopProcessPool | None:
        if self.mode == WorkerMode.THREADS:
            return ThreadPoolExecutor(self.pool_size, thread_name_prefix="cpu")
        if self.mode == WorkerMode.PROCESSES:
            return LoopProcessPool(self.pool_size)
        if self.mode == WorkerMode.INTERPRETERS:
            return interpreter_pool(self.pool_size)
        return None

    async def warm_up(self) -> None:
        """Start every pool process now, so the first jobs do not pay for it."""
        if self.executor is not None:
            await asyncio.gather(*(self.run(count_primes, 100) for _ in range(self.pool_size)))

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        executor = self.executor
        self.busy += 1
        try:
            if executor is None:
                return function(*args)
            if isinstance(executor, LoopProcessPool):
                return await executor.run(function, *args)
            return await asyncio.get_running_loop().run_in_executor(executor, function, *args)
        except BrokenProcessPool:
            if executor is not None:
                self._replace_broken(executor)
            raise
        finally:
            self.busy -= 1

    def _replace_broken(self, broken: Executor | LoopProcessPool) -> None:
        """Replace the pool once, however many steps saw it break."""
        if self.executor is not broken:
            return
        self.executor = self._new_executor()
        self.pools_replaced += 1
        broken.shutdown(wait=False, cancel_futures=True)
        log.warning("process_pool_replaced", pool_size=self.pool_size)

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
