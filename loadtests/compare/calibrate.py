"""The physical limits every scenario is measured against.

The single-core time of one ``cpu`` job is measured here, in this process, before any
cluster runs: the ideal throughput of a CPU scenario is the cores it can use divided by that
time. For I/O, the ideal is the jobs one loop holds in flight divided by their wait, capped
by the pipeline's own ceiling, measured by the ``overhead`` scenario.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

from pydantic import BaseModel, computed_field

from loadtests.compare.scenarios import Plan, Scenario, Workload
from shared.primes import count_primes


class Calibration(BaseModel):
    n: int
    cpu_job_ms: float
    """CPU time of one job on one core: the median of every sample. Thread CPU time leaves
    out the time the core spent on other programs; the samples are spread over the whole
    run (a few before it, a few between scenarios), as the scenarios are."""
    cpu_job_fastest_ms: float
    cpu_job_wall_ms: float
    """Median wall-clock time of the first samples; far above cpu_job_ms on a busy machine."""
    cores: int
    samples_ms: list[float]
    bare_parallel_speedup: float | None = None
    """Jobs/s of bare processes (no cluster) on every core ÷ jobs/s of one: the machine's own
    scaling. Below the core count when cores share caches, power or a hypervisor's host."""
    overhead_jobs_s: float | None = None
    """The pipeline's ceiling, filled in once the overhead scenario has run."""
    prefork_step_ms: float | None = None
    """The step's CPU time in a child of that prefork pool, every core busy: against
    cpu_job_ms (alone), what running beside each other costs the steps themselves."""
    prefork_jobs_s: float | None = None
    """Jobs/s of a bare prefork pool (``multiprocessing.Pool``, one process per core, each
    job a task of its own run in a child, no broker, no loop): the most a pool of processes
    gets out of this machine, so the cluster's pool is measured against it as well as
    against the ideal. The median of a few short rounds."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def step_spread(self) -> float | None:
        """p90 ÷ p10 of the one-core step over the run: how steady the machine's speed was.
        A quiet machine stays within a few percent. A VM whose host's other tenants come and
        go can swing by half within a minute, and every efficiency measured against the
        calibration swings with it."""
        if len(self.samples_ms) < 5:
            return None
        deciles = statistics.quantiles(self.samples_ms, n=10)
        return round(deciles[-1] / deciles[0], 3)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def prefork_efficiency(self) -> float | None:
        """The prefork pool's jobs/s ÷ the all-core ideal (cores times one core's jobs/s)."""
        if self.prefork_jobs_s is None or self.cpu_job_ms <= 0:
            return None
        return round(self.prefork_jobs_s * self.cpu_job_ms / (1000 * self.cores), 3)


def usable_cores() -> int:
    """Cores this process may run on (a container's CPU set, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def time_jobs(n: int, runs: int) -> tuple[list[float], list[float]]:
    """CPU and wall-clock milliseconds of ``runs`` jobs, in this thread."""
    cpu_ms, wall_ms = [], []
    for _ in range(runs):
        cpu_started, wall_started = time.thread_time(), time.perf_counter()
        count_primes(n)
        cpu_ms.append(round((time.thread_time() - cpu_started) * 1000, 3))
        wall_ms.append((time.perf_counter() - wall_started) * 1000)
    return cpu_ms, wall_ms


def calibrate(n: int, *, runs: int = 9) -> Calibration:
    count_primes(n)
    cpu_ms, wall_ms = time_jobs(n, runs)
    return Calibration(
        n=n,
        cpu_job_ms=round(statistics.median(cpu_ms), 3),
        cpu_job_fastest_ms=min(cpu_ms),
        cpu_job_wall_ms=round(statistics.median(wall_ms), 3),
        cores=usable_cores(),
        samples_ms=cpu_ms,
    )


def refine(calibration: Calibration, *, runs: int = 3) -> Calibration:
    """The calibration with a few more samples, taken between scenarios."""
    samples = calibration.samples_ms + time_jobs(calibration.n, runs)[0]
    return calibration.model_copy(
        update={
            "cpu_job_ms": round(statistics.median(samples), 3),
            "cpu_job_fastest_ms": min(samples),
            "samples_ms": samples,
        }
    )


def count_primes_repeatedly(n: int, times: int) -> int:
    """Top-level, so a spawned process can run it."""
    return sum(count_primes(n) > 0 for _ in range(times))


def bare_parallel_speedup(n: int, cores: int, *, rounds: int) -> float:
    """How much faster ``cores`` bare processes count primes than one, wall clock to wall
    clock: no broker, no event loop, only the machine. Alone and together alternate for a
    few short rounds and the fastest of each counts, so a burst of other work on the
    machine does not decide the figure."""
    per_run = max(2, round(400 / max(calibrate_once(n), 1.0)))
    context = multiprocessing.get_context("spawn")
    alone_s, together_s = [], []
    with ProcessPoolExecutor(cores, mp_context=context) as pool:
        list(pool.map(count_primes_repeatedly, [n] * cores, [1] * cores))
        for _ in range(rounds):
            started = time.perf_counter()
            count_primes_repeatedly(n, per_run)
            alone_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            list(pool.map(count_primes_repeatedly, [n] * cores, [per_run] * cores))
            together_s.append(time.perf_counter() - started)
    return round(cores * min(alone_s) / min(together_s), 3)


class Prefork(BaseModel):
    jobs_s: float
    step_ms: float
    """Mean thread CPU time of one job in a child, with every core running one: a mean, as
    the cluster's ``pool_step_cpu_ms_per_job`` is (the children's CPU over the window ÷ the
    jobs), so the two compare like with like. It leaves out the child's ~0.1 ms of
    hand-off, which the cluster's figure counts."""


def timed_count_primes(n: int) -> float:
    """One job's thread CPU time in ms; top-level, so a spawned process can run it."""
    started = time.thread_time()
    count_primes(n)
    return (time.thread_time() - started) * 1000


def prefork(n: int, cores: int, *, seconds: float, rounds: int) -> Prefork:
    """A prefork pool of ``cores`` children running one job per task (chunksize 1, as a
    prefork worker hands out one message at a time), over ``rounds`` rounds of about
    ``seconds`` each: the median rate, like the cluster's single measured batch it stands
    next to (a best-of would pick the round the machine was quietest), and the step's CPU
    time in a child beside the others, to set against the calibration's, taken alone."""
    jobs = max(2 * cores, round(seconds * cores * 1000 / max(calibrate_once(n), 1.0)))
    context = multiprocessing.get_context("spawn")
    rates: list[float] = []
    steps: list[float] = []
    with context.Pool(cores) as pool:
        pool.map(count_primes, [n] * cores, chunksize=1)
        for _ in range(rounds):
            started = time.perf_counter()
            steps += pool.imap_unordered(timed_count_primes, [n] * jobs, chunksize=1)
            rates.append(jobs / (time.perf_counter() - started))
    return Prefork(
        jobs_s=round(statistics.median(rates), 2), step_ms=round(statistics.fmean(steps), 3)
    )


def calibrate_once(n: int) -> float:
    started = time.perf_counter()
    count_primes(n)
    return (time.perf_counter() - started) * 1000


def mixed_rates(plan: Plan, calibration: Calibration) -> tuple[float, float]:
    """CPU and I/O jobs per second offered by the mixed stream."""
    return plan.mixed_cpu_load * 1000 / calibration.cpu_job_ms, plan.mixed_io_rate


def ideal_jobs_s(scenario: Scenario, plan: Plan, calibration: Calibration) -> float | None:
    """The throughput the scenario would reach if nothing but its physical limit counted.

    ``overhead`` has none: it *is* a limit. ``mixed`` runs at an offered rate below every
    topology's capacity, so its ideal is that rate: the question there is latency, not speed.
    """
    if scenario.workload == Workload.CPU:
        return scenario.cores_usable(calibration.cores) * 1000 / calibration.cpu_job_ms
    if scenario.workload == Workload.IO:
        in_flight = scenario.workers * plan.runners_for(scenario)
        concurrency_limit = in_flight * 1000 / plan.io_ms
        if calibration.overhead_jobs_s is None:
            return concurrency_limit
        return min(concurrency_limit, calibration.overhead_jobs_s)
    if scenario.workload == Workload.MIXED:
        return sum(mixed_rates(plan, calibration))
    return None
