"""Driving one scenario on a running cluster, through the gateway's HTTP API only.

Every scenario runs a warm-up first (pool processes, connections, caches), then the measured
part. Its window is bracketed by two things: the worker heartbeats (whose cumulative
loop-lag histograms subtract to the lag of exactly that window) and psutil's CPU times of
every member process and its pool children.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import psutil

from coordctl.client import AsyncGatewayClient, GatewayError
from loadtests.compare.calibrate import Calibration, ideal_jobs_s, mixed_rates
from loadtests.compare.clusters import RunningCluster
from loadtests.compare.cpustat import ZERO, Throttling, read_throttling
from loadtests.compare.results import ScenarioResult, cdf_points
from loadtests.compare.scenarios import Plan, Scenario, Workload
from shared.api import BatchStatus
from shared.batches import summarize_latency_histogram
from shared.heartbeat import WorkerBeat
from shared.jobs import BatchRequest, JobKind, JobParams
from shared.looplag import LagSummary, histogram_delta, summarize_histogram
from shared.settings import WorkerMode

Progress = Callable[[str], None]


class ScenarioFailed(RuntimeError):
    """The scenario could not be measured; the message says why in one line."""


@dataclass
class BatchOutcome:
    batch_id: str
    kind: str
    status: BatchStatus
    latency_histogram: Counter[int]
    """The batch's latency histogram (bucket index -> jobs), which adds across batches."""


class Gateway:
    """What the comparison asks the gateway, through the one client."""

    def __init__(self, client: AsyncGatewayClient) -> None:
        self.client = client

    async def submit(self, kind: str, count: int, *, n: int, io_ms: int) -> str:
        request = BatchRequest(kind=JobKind(kind), count=count, params=JobParams(n=n, io_ms=io_ms))
        return (await self.client.submit(request)).batch_id

    async def wait_done(self, batch_id: str, timeout_s: float) -> BatchStatus:
        return await self.client.wait(batch_id, timeout_s=timeout_s, must_finish=True)

    async def outcome(self, batch_id: str, kind: str, timeout_s: float) -> BatchOutcome:
        status = await self.wait_done(batch_id, timeout_s)
        latencies = await self.client.latencies(batch_id)
        return BatchOutcome(batch_id, kind, status, Counter(latencies.histogram()))

    async def worker_heartbeats(self) -> dict[str, WorkerBeat]:
        return {
            beat.instance: beat
            for beat in (await self.client.instances()).instances
            if isinstance(beat, WorkerBeat)
        }

    async def fresh_worker_heartbeats(
        self, workers: int, after: float, timeout_s: float = 10
    ) -> dict[str, WorkerBeat]:
        """Wait until every worker has sent a heartbeat stamped later than ``after``."""
        deadline = time.monotonic() + timeout_s
        while True:
            beats = await self.worker_heartbeats()
            fresh = {name: b for name, b in beats.items() if b.last_seen > after}
            if len(fresh) >= workers:
                return fresh
            if time.monotonic() >= deadline:
                raise ScenarioFailed(f"only {len(fresh)} of {workers} workers sent heartbeats")
            await asyncio.sleep(0.05)


def cpu_seconds(pids: dict[str, int], *, pools: bool = True) -> dict[str, float]:
    """User+system CPU seconds of each process; with ``pools``, its live children (a
    worker's pool) summed under '<name> pool'."""
    seconds: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            process = psutil.Process(pid)
            own = process.cpu_times()
            seconds[name] = own.user + own.system
            children = process.children(recursive=True) if pools else []
        except psutil.Error:
            continue
        child_total = 0.0
        for child in children:
            try:
                times = child.cpu_times()
            except psutil.Error:
                continue
            child_total += times.user + times.system
        if children:
            seconds[f"{name} pool"] = child_total
    return seconds


def cpu_percent(
    before: dict[str, float], after: dict[str, float], wall_s: float
) -> dict[str, float]:
    return {
        name: round((after[name] - before.get(name, 0.0)) / wall_s * 100, 1)
        for name in after
        if wall_s > 0
    }


def lag_summaries(
    before: Mapping[str, WorkerBeat], after: Mapping[str, WorkerBeat]
) -> tuple[LagSummary, dict[str, LagSummary]]:
    """Each worker's loop lag over the window, and all workers' samples together."""
    per_worker: dict[str, LagSummary] = {}
    together: Counter[int] = Counter()
    for name, beat in sorted(after.items()):
        earlier = before.get(name)
        delta = histogram_delta(
            (earlier.loop_lag_ms.histogram if earlier else None) or {},
            beat.loop_lag_ms.histogram or {},
        )
        together.update(delta)
        per_worker[name] = summarize_histogram(delta)
    return summarize_histogram(together), per_worker


@dataclass
class Window:
    """The measured part of a scenario, between two heartbeats and two CPU samples."""

    beats: dict[str, WorkerBeat]
    cpu: dict[str, float]
    wall: float
    throttling: Throttling = field(default_factory=lambda: ZERO)
    """Summed cpu.stat of the worker containers, where they run under a CPU quota."""


class ScenarioRun:
    def __init__(
        self,
        scenario: Scenario,
        plan: Plan,
        calibration: Calibration,
        cluster: RunningCluster,
        gateway: Gateway,
        progress: Progress,
    ) -> None:
        self.scenario = scenario
        self.plan = plan
        self.calibration = calibration
        self.cluster = cluster
        self.gateway = gateway
        self.progress = progress
        self.ideal = ideal_jobs_s(scenario, plan, calibration)

    def cpu_now(self) -> dict[str, float]:
        return {
            **cpu_seconds(self.cluster.pids),
            **cpu_seconds(self.cluster.servers, pools=False),
        }

    async def open_window(self) -> Window:
        started = time.time()
        beats = await self.gateway.fresh_worker_heartbeats(self.scenario.workers, started)
        return Window(
            beats, self.cpu_now(), time.monotonic(), read_throttling(self.cluster.cpu_stats)
        )

    async def close_window(self, opened: Window) -> tuple[float, dict[str, float], Window]:
        cpu = self.cpu_now()
        wall = time.monotonic()
        throttling = read_throttling(self.cluster.cpu_stats)
        beats = await self.gateway.fresh_worker_heartbeats(self.scenario.workers, time.time())
        closed = Window(beats, cpu, wall, throttling)
        return wall - opened.wall, cpu_percent(opened.cpu, cpu, wall - opened.wall), closed

    def timeout_s(self, jobs: int, rate_guess: float) -> float:
        return 60 + 5 * jobs / max(rate_guess, 1.0)

    def params(self) -> tuple[str, int, int]:
        """Job kind, n and io_ms of the scenario's batch workload."""
        if self.scenario.workload == Workload.CPU:
            return "cpu", self.plan.n, 0
        if self.scenario.workload == Workload.IO:
            return "io", self.plan.n, self.plan.io_ms
        return "io", self.plan.n, 0

    async def run(self) -> ScenarioResult:
        if self.scenario.workload == Workload.MIXED:
            return await self.run_mixed()
        return await self.run_batch()

    async def run_batch(self) -> ScenarioResult:
        kind, n, io_ms = self.params()
        rate_guess = self.ideal or 1000.0
        warm_up_jobs = max(4 * self.scenario.cores_usable(self.calibration.cores), 20)
        warm_up_jobs = max(warm_up_jobs, math.ceil(rate_guess * self.plan.warm_up_s))
        if self.scenario.workload == Workload.OVERHEAD:
            warm_up_jobs = max(warm_up_jobs, 300)
        self.progress(f"warm-up: {warm_up_jobs} jobs")
        warm_id = await self.gateway.submit(kind, warm_up_jobs, n=n, io_ms=io_ms)
        warm = await self.gateway.wait_done(warm_id, self.timeout_s(warm_up_jobs, rate_guess))
        if self.ideal is None:
            rate_guess = warm.throughput_jobs_s or 100.0
        jobs = max(50, round(rate_guess * self.plan.measure_s))
        if self.scenario.workload == Workload.IO:
            jobs = self.plan.io_jobs(self.scenario.workers)

        opened = await self.open_window()
        self.progress(f"measuring: {jobs} jobs")
        batch_id = await self.gateway.submit(kind, jobs, n=n, io_ms=io_ms)
        outcome = await self.gateway.outcome(batch_id, kind, self.timeout_s(jobs, rate_guess))
        wall_s, cpu, closed = await self.close_window(opened)

        status = outcome.status
        throughput = status.throughput_jobs_s or 0.0
        return self.result(
            jobs=jobs,
            failed=status.failed,
            duration_s=status.duration_s or wall_s,
            throughput=throughput,
            latencies=outcome.latency_histogram,
            opened=opened,
            closed=closed,
            cpu=cpu,
            wall_s=wall_s,
            cpu_jobs=jobs if kind == "cpu" else 0,
            n=n,
            io_ms=io_ms,
        )

    async def stream(self, seconds: float) -> tuple[list[asyncio.Task[tuple[str, str]]], int]:
        """Submit the mixed stream for ``seconds``: per tick, a small CPU batch and a small
        I/O batch, on an absolute schedule so slow answers do not slow the offered rate."""
        cpu_rate, io_rate = mixed_rates(self.plan, self.calibration)
        tick = self.plan.tick_s
        submitted: list[asyncio.Task[tuple[str, str]]] = []
        owed_cpu = owed_io = 0.0
        jobs = 0
        started = time.monotonic()
        for index in range(max(1, round(seconds / tick))):
            owed_cpu += cpu_rate * tick
            owed_io += io_rate * tick
            cpu_now, io_now = int(owed_cpu), int(owed_io)
            owed_cpu -= cpu_now
            owed_io -= io_now
            for kind, count in (("cpu", cpu_now), ("io", io_now)):
                if count:
                    submitted.append(asyncio.create_task(self.submit_kind(kind, count)))
            jobs += cpu_now + io_now
            await asyncio.sleep(max(0.0, started + (index + 1) * tick - time.monotonic()))
        return submitted, jobs

    async def submit_kind(self, kind: str, count: int) -> tuple[str, str]:
        io_ms = self.plan.mixed_io_ms if kind == "io" else 0
        return kind, await self.gateway.submit(kind, count, n=self.plan.n, io_ms=io_ms)

    async def collect(
        self, tasks: Iterable[asyncio.Task[tuple[str, str]]], jobs: int
    ) -> list[BatchOutcome]:
        submitted = await asyncio.gather(*tasks)
        timeout_s = self.timeout_s(jobs, self.ideal or 100.0)
        return [
            await self.gateway.outcome(batch_id, kind, timeout_s) for kind, batch_id in submitted
        ]

    async def run_mixed(self) -> ScenarioResult:
        self.progress("warm-up stream")
        warm_tasks, warm_jobs = await self.stream(max(self.plan.warm_up_s, 4 * self.plan.tick_s))
        await self.collect(warm_tasks, warm_jobs)

        opened = await self.open_window()
        self.progress(f"measuring: stream of {self.plan.measure_s:.0f}s")
        tasks, jobs = await self.stream(self.plan.measure_s)
        outcomes = await self.collect(tasks, jobs)
        wall_s, cpu, closed = await self.close_window(opened)

        first = min(o.status.created_at for o in outcomes)
        last = max(o.status.finished_at or 0.0 for o in outcomes)
        duration_s = max(last - first, 1e-6)
        io_latencies: Counter[int] = sum(
            (o.latency_histogram for o in outcomes if o.kind == "io"), Counter()
        )
        cpu_latencies: Counter[int] = sum(
            (o.latency_histogram for o in outcomes if o.kind == "cpu"), Counter()
        )
        result = self.result(
            jobs=jobs,
            failed=sum(o.status.failed for o in outcomes),
            duration_s=duration_s,
            throughput=jobs / duration_s,
            latencies=io_latencies + cpu_latencies,
            opened=opened,
            closed=closed,
            cpu=cpu,
            wall_s=wall_s,
            cpu_jobs=cpu_latencies.total(),
            n=self.plan.n,
            io_ms=self.plan.mixed_io_ms,
        )
        return result.model_copy(
            update={
                "io_latency_ms": summarize_latency_histogram(io_latencies),
                "cpu_latency_ms": summarize_latency_histogram(cpu_latencies),
                "io_latency_cdf_ms": cdf_points(io_latencies),
                "offered_jobs_s": round(self.ideal or 0.0, 2),
            }
        )

    def result(
        self,
        *,
        jobs: int,
        failed: int,
        duration_s: float,
        throughput: float,
        latencies: Counter[int],
        opened: Window,
        closed: Window,
        cpu: dict[str, float],
        wall_s: float,
        cpu_jobs: int,
        n: int,
        io_ms: int,
    ) -> ScenarioResult:
        lag, lag_per_worker = lag_summaries(opened.beats, closed.beats)
        spent_ms = sum(cpu.values()) / 100 * wall_s * 1000
        steps_ms = cpu_jobs * self.calibration.cpu_job_ms
        pool_ms = sum(v for k, v in cpu.items() if k.endswith(" pool")) / 100 * wall_s * 1000
        scenario = self.scenario
        return ScenarioResult(
            name=scenario.name,
            label=scenario.label,
            lesson=scenario.lesson,
            mode=scenario.mode.value,
            workers=scenario.workers,
            pool_size=scenario.effective_pool_size,
            runners=self.plan.runners_for(scenario),
            workload=scenario.workload.value,
            n=n,
            io_ms=io_ms,
            jobs=jobs,
            failed=failed,
            duration_s=round(duration_s, 3),
            throughput_jobs_s=round(throughput, 2),
            ideal_jobs_s=None if self.ideal is None else round(self.ideal, 2),
            efficiency=None if not self.ideal else round(throughput / self.ideal, 3),
            cores_usable=scenario.cores_usable(self.calibration.cores),
            latency_ms=summarize_latency_histogram(latencies),
            loop_lag_ms=lag,
            loop_lag_per_worker=lag_per_worker,
            cpu_percent=cpu,
            workers_cores=(
                round(sum(v for k, v in cpu.items() if k.startswith("worker")) / 100, 2)
                if cpu
                else None
            ),
            pipeline_cpu_ms_per_job=(
                round(max(0.0, spent_ms - steps_ms) / jobs, 3) if cpu and jobs else None
            ),
            cpu_ms_per_job=round(spent_ms / jobs, 3) if cpu and jobs else None,
            pool_step_cpu_ms_per_job=(
                round(pool_ms / cpu_jobs, 3)
                if scenario.mode == WorkerMode.PROCESSES and pool_ms and cpu_jobs
                else None
            ),
            latency_cdf_ms=cdf_points(latencies),
            container_cpus=scenario.cpus,
            throttling=(closed.throttling - opened.throttling) if self.cluster.cpu_stats else None,
        )


async def drive(
    scenario: Scenario,
    plan: Plan,
    calibration: Calibration,
    cluster: RunningCluster,
    progress: Progress,
) -> ScenarioResult:
    """Warm up, measure and summarise one scenario on its freshly started cluster."""
    async with AsyncGatewayClient(cluster.gateway_url, max_connections=64) as client:
        run = ScenarioRun(scenario, plan, calibration, cluster, Gateway(client), progress)
        try:
            return await run.run()
        except GatewayError as exc:
            raise ScenarioFailed(f"gateway at {cluster.gateway_url}: {exc}") from exc
