"""The loop-driven process pool: values and errors come back, every child works, a dead child
breaks the pool as ``ProcessPoolExecutor`` does, and the runner replaces it."""

from __future__ import annotations

import asyncio
import operator
import os
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

from services.worker.executors import CpuRunner
from services.worker.process_pool import CALLS_PER_CHILD, LoopProcessPool
from shared.primes import count_primes
from shared.settings import WorkerMode


def pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


async def test_values_and_errors_come_back_to_their_callers() -> None:
    pool = LoopProcessPool(2)
    try:
        values = await asyncio.gather(*(pool.run(count_primes, 10_000) for _ in range(7)))
        assert values == [1229] * 7
        with pytest.raises(ZeroDivisionError):
            await pool.run(operator.truediv, 1, 0)
        assert await pool.run(count_primes, 100) == 25  # an error leaves the child serving
    finally:
        pool.shutdown()


async def test_calls_spread_over_every_child_and_none_queues_more_than_its_share() -> None:
    pool = LoopProcessPool(2)
    try:
        calls = [asyncio.ensure_future(pool.run(pid_after, 0.05)) for _ in range(6)]
        await asyncio.sleep(0)
        assert all(len(child.waiting) <= CALLS_PER_CHILD for child in pool.children)
        assert len(pool.queued) == 6 - 2 * CALLS_PER_CHILD
        pids = await asyncio.gather(*calls)
        assert set(pids) == {child.process.pid for child in pool.children}
    finally:
        pool.shutdown()


async def test_a_dead_child_breaks_the_pool_and_fails_its_calls() -> None:
    pool = LoopProcessPool(2)
    try:
        await pool.run(count_primes, 100)
        waiting = [asyncio.ensure_future(pool.run(pid_after, 0.5)) for _ in range(4)]
        await asyncio.sleep(0.1)
        pool.children[0].process.kill()
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        assert any(isinstance(o, BrokenProcessPool) for o in outcomes)
        with pytest.raises(BrokenProcessPool):
            await pool.run(count_primes, 100)
        assert not any(child.process.is_alive() for child in pool.children)
    finally:
        pool.shutdown()


async def test_the_runner_replaces_a_broken_pool() -> None:
    runner = CpuRunner(WorkerMode.PROCESSES, 1)
    try:
        await runner.warm_up()
        broken = runner.executor
        assert isinstance(broken, LoopProcessPool)
        with pytest.raises(BrokenProcessPool):
            await runner.run(os._exit, 1)
        assert runner.executor is not broken and runner.pools_replaced == 1
        assert await runner.run(count_primes, 10_000) == 1229
    finally:
        runner.close()


async def test_shutdown_stops_every_child() -> None:
    pool = LoopProcessPool(2)
    await asyncio.gather(*(pool.run(count_primes, 100) for _ in range(2)))
    pool.shutdown()
    assert not any(child.process.is_alive() for child in pool.children)
    with pytest.raises(RuntimeError, match="shut down"):
        await pool.run(count_primes, 100)
