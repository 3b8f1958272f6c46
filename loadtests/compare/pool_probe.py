"""Paired rounds for issue 14's pool question: is the step slower in the worker's pool?

``cpu/processes-1wx2``'s cluster against a bare prefork pool (``--against prefork``), or
against a second cluster whose workers get other settings (``--against '{"COORD_X": ..}'``),
in alternating rounds of one batch each, on one shared machine at the same time. Per round:
the children's CPU per job from the scheduler's own runtime (``/proc/<pid>/sched``, ns, not
psutil's 10 ms ticks), their involuntary switches and migrations, and the jobs/s. The
medians of the per-round ratios survive a machine whose speed drifts by tens of percent;
single figures taken minutes apart do not.

Each round also gives the rest of the pipeline's cost per job, process by process (the
gateway, the worker itself, the aggregator, and a local RabbitMQ and Redis): the CPU of all
its threads, and its wake-ups (voluntary switches: each one a sleep that a wake-up ended).
On a small VM a wake-up of an idle process costs more than the Python it runs, so the
wake-ups explain the CPU. RabbitMQ and Redis serve both clusters of an ``--against`` run,
so their figures carry the other cluster's idle traffic too.

    python -m loadtests.compare.pool_probe --rounds 20 --jobs 20
    python -m loadtests.compare.pool_probe --against '{"COORD_RUNNERS": "8"}'
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from multiprocessing.pool import Pool
from pathlib import Path

import psutil

from coordctl.client import AsyncGatewayClient
from coordctl.servers import free_port
from loadtests.compare.calibrate import timed_count_primes
from loadtests.compare.clusters import fast_heartbeats, local_server_pids
from loadtests.harness import scoped_cluster
from shared.jobs import BatchRequest, JobKind, JobParams
from shared.primes import count_primes
from shared.settings import WorkerMode, load_settings

N = 100_000
Round = dict[str, float]


def scheduler_stats(pid: int) -> dict[str, float]:
    """Runtime (ms), involuntary switches and migrations of one process, from the kernel."""
    wanted = {
        "se.sum_exec_runtime": "cpu_ms",
        "nr_involuntary_switches": "switches",
        "se.nr_migrations": "migrations",
    }
    found: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/sched").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in wanted:
                found[wanted[key.strip()]] = float(value)
    return found


def threads_cpu_and_wakeups(pid: int) -> tuple[float, int]:
    """CPU ms of every thread of ``pid`` (the scheduler's runtime) and their voluntary
    switches; (0, 0) once the process is gone."""
    cpu_ns, wakeups = 0, 0
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError):
                cpu_ns += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
                for line in Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines():
                    if line.startswith("voluntary_ctxt_switches:"):
                        wakeups += int(line.split()[1])
    return cpu_ns / 1e6, wakeups


def pipeline_totals(pids: dict[str, int]) -> dict[str, tuple[float, int]]:
    return {name: threads_cpu_and_wakeups(pid) for name, pid in pids.items()}


def children_totals(pids: list[int]) -> dict[str, float]:
    totals = {"cpu_ms": 0.0, "switches": 0.0, "migrations": 0.0}
    for pid in pids:
        for key, value in scheduler_stats(pid).items():
            totals[key] += value
    return totals


def pool_children(parent: int) -> list[int]:
    """The pool's children of ``parent``, without multiprocessing's resource tracker."""
    found = []
    for child in psutil.Process(parent).children():
        with contextlib.suppress(psutil.Error):
            if "resource_tracker" not in " ".join(child.cmdline()):
                found.append(child.pid)
    return found


async def measured(
    pids: list[int],
    jobs: int,
    run: Callable[[], Awaitable[None]],
    pipeline: dict[str, int] | None = None,
) -> Round:
    """The children's figures, and with ``pipeline`` (name -> pid) each of those processes'
    CPU (µs) and wake-ups per job."""
    pipeline = pipeline or {}
    before, started = children_totals(pids), time.monotonic()
    pipeline_before = pipeline_totals(pipeline)
    await run()
    wall_s, after = time.monotonic() - started, children_totals(pids)
    pipeline_after = pipeline_totals(pipeline)
    figures = {
        "jobs_s": jobs / wall_s,
        "child_cpu_ms_per_job": (after["cpu_ms"] - before["cpu_ms"]) / jobs,
        "switches_per_job": (after["switches"] - before["switches"]) / jobs,
        "migrations_per_job": (after["migrations"] - before["migrations"]) / jobs,
    }
    for name, (cpu_ms, wakeups) in pipeline_after.items():
        figures[f"{name}_cpu_us_per_job"] = (cpu_ms - pipeline_before[name][0]) * 1000 / jobs
        figures[f"{name}_wakeups_per_job"] = (wakeups - pipeline_before[name][1]) / jobs
    if pipeline:
        figures["pipeline_cpu_us_per_job"] = sum(
            v for k, v in figures.items() if k.endswith("_cpu_us_per_job")
        )
    return figures


class Cluster:
    """One cpu/processes-1wx2 cluster as the comparison starts it, and its batches."""

    def __init__(self, gateway_url: str, worker: int, pipeline: dict[str, int]) -> None:
        self.gateway_url = gateway_url
        self.worker = worker
        self.pipeline = pipeline
        """Name -> pid of every process a job passes through, but the pool's children."""

    async def batch(self, client: AsyncGatewayClient, jobs: int) -> None:
        request = BatchRequest(kind=JobKind.CPU, count=jobs, params=JobParams(n=N, io_ms=0))
        batch_id = (await client.submit(request)).batch_id
        await client.wait(batch_id, timeout_s=60 + 5 * jobs, must_finish=True)

    async def round(self, jobs: int) -> Round:
        async with AsyncGatewayClient(self.gateway_url, max_connections=8) as client:
            return await measured(
                pool_children(self.worker),
                jobs,
                lambda: self.batch(client, jobs),
                self.pipeline,
            )


def start(stack: contextlib.ExitStack, env: dict[str, str]) -> Cluster:
    """A cluster stopped and purged (by the harness) when ``stack`` closes."""
    base = load_settings()
    settings = base.replace(
        namespace=f"{base.namespace}-probe-{secrets.token_hex(3)}",
        gateway_port=free_port(),
        run_dir=Path(tempfile.mkdtemp(prefix="pool-probe-")),
        runners=64,
        log_level="warning",
    )
    state = stack.enter_context(
        scoped_cluster(
            settings,
            workers=1,
            mode=WorkerMode.PROCESSES,
            pool_size=2,
            worker_env=fast_heartbeats(env),
        )
    )
    worker = next(m.pid for m in state.members if m.service == "worker")
    pipeline = {m.service: m.pid for m in state.members} | local_server_pids(settings)
    return Cluster(state.gateway_url, worker, pipeline)


async def prefork_round(pool: Pool, jobs: int) -> Round:
    async def run() -> None:
        await asyncio.to_thread(pool.map, timed_count_primes, [N] * jobs, 1)

    return await measured(pool_children(os.getpid()), jobs, run)


async def alternate(
    rounds: int, jobs: int, cluster: Cluster, other: Cluster | Pool
) -> dict[str, list[Round]]:
    """Round after round, the cluster and the other in turns, each first every other round."""
    results: dict[str, list[Round]] = {"cluster": [], "other": []}
    for each in (cluster, other):
        if isinstance(each, Cluster):
            async with AsyncGatewayClient(each.gateway_url) as client:
                await each.batch(client, 10)
        else:
            await asyncio.to_thread(each.map, count_primes, [N] * 2, 1)
    for index in range(rounds):
        for name in ("cluster", "other") if index % 2 == 0 else ("other", "cluster"):
            if name == "cluster":
                figures = await cluster.round(jobs)
            elif isinstance(other, Cluster):
                figures = await other.round(jobs)
            else:
                figures = await prefork_round(other, jobs)
            results[name].append(figures)
            shown = {k: round(v, 2) for k, v in figures.items() if "wakeups" not in k}
            print(index, name, shown, flush=True)
    return results


def probe(rounds: int, jobs: int, against: str) -> dict[str, list[Round]]:
    with contextlib.ExitStack() as stack:
        cluster = start(stack, {})
        other: Cluster | Pool
        if against == "prefork":
            other = stack.enter_context(multiprocessing.get_context("spawn").Pool(2))
        else:
            other = start(stack, json.loads(against))
        return asyncio.run(alternate(rounds, jobs, cluster, other))


def summary(results: dict[str, list[Round]]) -> list[str]:
    """Per figure both medians and the median of the per-round ratios; the pipeline's
    figures only where both sides have them (a prefork pool has no pipeline)."""
    lines = []
    for key in results["cluster"][0]:
        if key not in results["other"][0]:
            mine = statistics.median(r[key] for r in results["cluster"])
            lines.append(f"{key}: cluster {mine:.2f}")
            continue
        ratios = [
            other[key] / mine[key]
            for mine, other in zip(results["cluster"], results["other"], strict=True)
            if mine[key]
        ]
        mine = statistics.median(r[key] for r in results["cluster"])
        other = statistics.median(r[key] for r in results["other"])
        lines.append(
            f"{key}: cluster {mine:.2f}, other {other:.2f}; other/cluster per round: median "
            f"{statistics.median(ratios) if ratios else float('nan'):.3f}, "
            f"{sum(r > 1 for r in ratios)} of {len(ratios)} above 1"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument(
        "--against",
        default="prefork",
        help="'prefork', or a JSON object of worker environment for a second cluster",
    )
    args = parser.parse_args()
    print("load average before", os.getloadavg(), flush=True)
    results = probe(args.rounds, args.jobs, args.against)
    print("load average after", os.getloadavg())
    print("\n".join(summary(results)))


if __name__ == "__main__":
    main()
