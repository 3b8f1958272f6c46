"""``python -m loadtests.bench.touches``: the ``io`` step's Redis touch, one by one or pipelined.

``runners`` tasks (as many as a worker's) each make touches until ``touches`` are done, once
with a ``SET`` per touch and round trip, once through :class:`services.worker.touches.Touches`,
their order swapped every round. The medians of this process's CPU µs per touch (time it
spends in the client, read by ``time.process_time``) and of Redis's (psutil) are printed with
the load average: figures that the machine's noise barely moves.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

import psutil
import typer
from redis.asyncio import Redis

from loadtests.bench.cpu import cpu_seconds, server_pids
from services.worker.touches import Touches
from shared.redis_client import connect_redis
from shared.runtime import run_fast
from shared.settings import load_settings

app = typer.Typer(add_completion=False)


async def one_run(
    touch: Callable[[str], Awaitable[None]], prefix: str, count: int, runners: int
) -> None:
    keys = iter(range(count))

    async def runner() -> None:
        for index in keys:
            await touch(f"{prefix}:{index}")

    await asyncio.gather(*(runner() for _ in range(runners)))


async def measure(touches: int, runners: int, rounds: int) -> dict[str, dict[str, float]]:
    settings = load_settings()
    redis_pid = server_pids(settings).get("redis", 0)
    redis: Redis = await connect_redis(settings)
    prefix = f"hwtouch{uuid.uuid4().hex[:8]}"
    piped = Touches(redis)

    async def single(key: str) -> None:
        await redis.set(key, 1, px=60_000)

    async def pipelined(key: str) -> None:
        await piped.set(key, 1, px=60_000)

    ways = {"one by one": single, "pipelined": pipelined}
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    try:
        for index in range(rounds):
            for name in list(ways) if index % 2 == 0 else list(reversed(ways)):
                client, server = time.process_time(), cpu_seconds(redis_pid)
                await one_run(ways[name], prefix, touches, runners)
                runs[name].append(
                    (
                        (time.process_time() - client) * 1e6 / touches,
                        (cpu_seconds(redis_pid) - server) * 1e6 / touches,
                    )
                )
    finally:
        async for key in redis.scan_iter(f"{prefix}:*", count=1000):
            await redis.unlink(key)
        await redis.aclose()
    return {
        name: {
            "client_us": round(statistics.median(r[0] for r in rs), 1),
            "redis_us": round(statistics.median(r[1] for r in rs), 1),
        }
        for name, rs in runs.items()
    }


@app.command()
def main(
    touches: Annotated[int, typer.Option(min=100)] = 20_000,
    runners: Annotated[int, typer.Option(min=1)] = 64,
    rounds: Annotated[int, typer.Option(min=1)] = 6,
) -> None:
    """Print the medians of CPU µs per touch, in this process and in Redis."""
    load = os.getloadavg()[0]
    for name, figures in run_fast(measure(touches, runners, rounds)).items():
        print(
            f"{name:>10}: client {figures['client_us']:6.1f} µs/touch,"
            f" redis {figures['redis_us']:5.1f} µs/touch"
        )
    print(
        f"{rounds} alternating rounds of {touches:,} touches by {runners} tasks; load {load:.1f}"
        f" -> {os.getloadavg()[0]:.1f}; cores {psutil.cpu_count()}"
    )


if __name__ == "__main__":
    app()
