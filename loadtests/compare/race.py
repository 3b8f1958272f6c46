"""The race demonstration: shared state across an ``await``, unguarded and guarded.

Inside one process, tasks that read a counter, await, and write it back lose each other's
updates; an ``asyncio.Lock`` around the three steps fixes it. Across processes no asyncio
lock reaches: a Redis GET-then-SET loses updates even with a lock in every process, and the
atomic INCR does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from multiprocessing.synchronize import Barrier

from redis.asyncio import Redis
from redis.exceptions import RedisError

from loadtests.compare.results import CrossProcessRace, RaceOutcome, RaceResults
from shared.names import Names


class Counter:
    value = 0


async def in_process_race(tasks: int, rounds: int, *, lock: bool) -> RaceOutcome:
    """``tasks`` tasks each add 1 ``rounds`` times with a read, an await, and a write.

    ``asyncio.sleep(0)`` stands for any await between the read and the write: a Redis call,
    an HTTP request. It is where the loop runs the other tasks.
    """
    counter = Counter()
    guard = asyncio.Lock()

    async def add_one_at_a_time() -> None:
        for _ in range(rounds):
            async with guard if lock else contextlib.nullcontext():
                seen = counter.value
                await asyncio.sleep(0)
                counter.value = seen + 1

    await asyncio.gather(*(add_one_at_a_time() for _ in range(tasks)))
    return RaceOutcome.of(tasks * rounds, counter.value)


async def _hammer(redis_url: str, key: str, variant: str, tasks: int, rounds: int) -> None:
    redis = Redis.from_url(redis_url)
    guard = asyncio.Lock()

    async def add(local_lock: bool) -> None:
        async with guard if local_lock else contextlib.nullcontext():
            seen = int(await redis.get(key) or 0)
            await redis.set(key, seen + 1)

    async def task() -> None:
        for _ in range(rounds):
            if variant == "incr":
                await redis.incr(key)
            else:
                await add(local_lock=variant == "local_lock")

    try:
        await asyncio.gather(*(task() for _ in range(tasks)))
    finally:
        await redis.aclose()


def hammer_process(
    redis_url: str, key: str, variant: str, tasks: int, rounds: int, start: Barrier
) -> None:
    """One process of the cross-process race; top-level so a spawned process can import it."""
    start.wait()
    asyncio.run(_hammer(redis_url, key, variant, tasks, rounds))


def cross_process_race(
    redis_url: str, names: Names, *, processes: int, tasks: int, rounds: int
) -> CrossProcessRace:
    """Every variant against its own key of this namespace; the keys are deleted after."""
    context = multiprocessing.get_context("spawn")
    outcomes: dict[str, RaceOutcome] = {}
    for variant in ("unsafe", "local_lock", "safe"):
        key = names.race_counter(variant)
        operation = {"unsafe": "get_set", "local_lock": "local_lock", "safe": "incr"}[variant]
        asyncio.run(_delete(redis_url, key))
        start = context.Barrier(processes)
        workers = [
            context.Process(
                target=hammer_process, args=(redis_url, key, operation, tasks, rounds, start)
            )
            for _ in range(processes)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
            if worker.exitcode != 0:
                if worker.is_alive():
                    worker.terminate()
                raise RuntimeError(f"a race process exited with {worker.exitcode}")
        observed = asyncio.run(_read_and_delete(redis_url, key))
        outcomes[variant] = RaceOutcome.of(processes * tasks * rounds, observed)
    return CrossProcessRace(
        processes=processes,
        tasks_per_process=tasks,
        unsafe=outcomes["unsafe"],
        safe=outcomes["safe"],
        local_lock=outcomes["local_lock"],
    )


async def _delete(redis_url: str, key: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        await redis.delete(key)
    finally:
        await redis.aclose()


async def _read_and_delete(redis_url: str, key: str) -> int:
    redis = Redis.from_url(redis_url)
    try:
        value = int(await redis.get(key) or 0)
        await redis.delete(key)
        return value
    finally:
        await redis.aclose()


def run_race(
    redis_url: str, names: Names, *, cores: int, quick: bool, tasks: int = 100
) -> RaceResults:
    rounds = 20 if quick else 100
    unsafe = asyncio.run(in_process_race(tasks, rounds, lock=False))
    safe = asyncio.run(in_process_race(tasks, rounds, lock=True))
    cross: CrossProcessRace | None = None
    error: str | None = None
    try:
        cross = cross_process_race(
            redis_url,
            names,
            processes=max(2, cores),
            tasks=4,
            rounds=100 if quick else 400,
        )
    except (OSError, RuntimeError, RedisError) as exc:
        error = f"cross-process race not run: {exc}"
    return RaceResults(
        tasks=tasks,
        rounds=rounds,
        unsafe=unsafe,
        safe=safe,
        cross_process=cross,
        cross_process_error=error,
    )
