"""``python -m loadtests.bench.status_reads``: what one status read costs the gateway.

A batch's state is built directly with the aggregator's real fold script (``jobs`` results
folded in slices, no workers involved), the batch kept ``running`` so no cache answers for
it; then a real gateway process answers ``GET /batches/{id}`` and ``GET
/batches/{id}/latencies`` again and again, and psutil reads the gateway's CPU time around
each round. The same is done for a 10-job batch: the two costs should be the same.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import httpx
import psutil
import typer
from rich.console import Console
from rich.table import Table

from coordctl.servers import free_port
from loadtests.harness import machine, scoped_cluster
from loadtests.reports import new_run_dir, point_latest
from services.aggregator.fold import ResultFolder
from shared.api import Paths
from shared.batches import create_batch
from shared.jobs import JobKind, JobParams, Result
from shared.redis_client import connect_redis
from shared.settings import Settings, WorkerMode, load_settings

console = Console()
app = typer.Typer(add_completion=False)
SLICE = 500
MIN_ROUND_S = 1.0


async def build_batch(settings: Settings, jobs: int) -> str:
    """A running batch with ``jobs`` results folded (latencies spread over 1 ms .. 10 s)."""
    batch_id = uuid.uuid4().hex
    redis = await connect_redis(settings, attempts=3)
    try:
        await create_batch(
            redis,
            settings.names,
            batch_id=batch_id,
            kind=JobKind.IO,
            expected=jobs + 1,
            params=JobParams(n=2, io_ms=0),
            ttl_s=3600,
        )
        folder = ResultFolder(redis, settings.names, ttl_s=3600)
        now = time.time()
        for start in range(0, jobs, SLICE):
            await folder.fold(
                [
                    Result(
                        job_id=f"{batch_id}.{index}",
                        batch_id=batch_id,
                        kind=JobKind.IO,
                        ok=True,
                        value=index % 97,
                        submitted_at=now - 0.001 * (1 + index % 10_000),
                        finished_at=now,
                        worker=f"worker-{index % 2 + 1}",
                    )
                    for index in range(start, min(jobs, start + SLICE))
                ]
            )
    finally:
        await redis.aclose()
    return batch_id


def cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


async def measure(
    gateway_url: str, gateway_pid: int, path: str, *, reads: int, rounds: int
) -> dict[str, Any]:
    """Median over ``rounds`` of the gateway CPU ms and the wall ms per read, and the size.

    A round is at least ``reads`` reads and at least a second long: the kernel counts CPU
    time in 10 ms ticks, so a cheap read needs many of them to be resolved.
    """
    cpu_ms: list[float] = []
    wall_ms: list[float] = []
    size = 0
    async with httpx.AsyncClient(base_url=gateway_url, timeout=60) as client:
        for _ in range(3):
            (await client.get(path)).raise_for_status()
        for _ in range(rounds):
            before, started = cpu_s(gateway_pid), time.perf_counter()
            done = 0
            while done < reads or time.perf_counter() - started < MIN_ROUND_S:
                answer = await client.get(path)
                answer.raise_for_status()
                size = len(answer.content)
                done += 1
            wall_ms.append((time.perf_counter() - started) * 1000 / done)
            cpu_ms.append((cpu_s(gateway_pid) - before) * 1000 / done)
    return {
        "gateway_cpu_ms_per_read": round(statistics.median(cpu_ms), 3),
        "wall_ms_per_read": round(statistics.median(wall_ms), 3),
        "bytes": size,
        "rounds_cpu_ms": [round(v, 3) for v in cpu_ms],
    }


def bench(settings: Settings, sizes: list[int], *, reads: int, rounds: int) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "reads_per_round": reads, "batches": {}}
    with scoped_cluster(settings, workers=1, mode=WorkerMode.BLOCKING) as state:
        gateway_pid = next(m.pid for m in state.members if m.service == "gateway")
        for jobs in sizes:
            with console.status(f"folding {jobs:,} results into a running batch"):
                batch_id = asyncio.run(build_batch(settings, jobs))
            figures: dict[str, Any] = {}
            for name, path in (
                ("status", Paths.of(Paths.BATCH, batch_id)),
                ("latencies", Paths.of(Paths.LATENCIES, batch_id)),
            ):
                with console.status(f"{jobs:,} jobs: {name} reads"):
                    figures[name] = asyncio.run(
                        measure(state.gateway_url, gateway_pid, path, reads=reads, rounds=rounds)
                    )
            results["batches"][str(jobs)] = figures
    results["load_average_at_end"] = list(os.getloadavg())
    return results


def show(results: dict[str, Any]) -> None:
    table = Table(title="gateway cost per read (median of rounds)")
    for column in ("jobs in batch", "endpoint", "gateway CPU ms/read", "wall ms/read", "bytes"):
        table.add_column(column, justify="right")
    for jobs, figures in results["batches"].items():
        for name, f in figures.items():
            table.add_row(
                f"{int(jobs):,}",
                name,
                f"{f['gateway_cpu_ms_per_read']:.2f}",
                f"{f['wall_ms_per_read']:.2f}",
                f"{f['bytes']:,}",
            )
    console.print(table)
    start = results["machine"]["load_average_at_start"]
    console.print(f"load average at start {start}, at end {results['load_average_at_end']}")


@app.command()
def main(
    jobs: Annotated[int, typer.Option(min=10, help="jobs folded into the large batch")] = 100_000,
    reads: Annotated[int, typer.Option(min=1, help="reads per measured round")] = 20,
    rounds: Annotated[int, typer.Option(min=1, help="measured rounds per endpoint")] = 5,
    port: Annotated[int, typer.Option(help="gateway port; 0 = a free one")] = 0,
    reports: Annotated[Path, typer.Option(help="where reports go")] = Path("reports/status-reads"),
) -> None:
    """Gateway CPU per status read and per latencies call, for 10 jobs and for ``jobs``."""
    out = new_run_dir(reports)
    settings = load_settings().replace(
        namespace=f"benchst{uuid.uuid4().hex[:8]}",
        gateway_port=port or free_port(),
        run_dir=out / "cluster",
        log_level="warning",
    )
    results = bench(settings, [10, jobs], reads=reads, rounds=rounds)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    point_latest(out)
    show(results)
    console.print(f"results: {out / 'results.json'}")


if __name__ == "__main__":
    app()
