"""Results of an imaginary run, built from a few figures, for the verdict and report tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from loadtests.compare.calibrate import Calibration
from loadtests.compare.cpustat import Throttling
from loadtests.compare.results import (
    CompareResults,
    CrossProcessRace,
    Machine,
    RaceOutcome,
    RaceResults,
    ScenarioResult,
)
from shared.api import LatencySummary
from shared.looplag import LagSummary

CPU_JOB_MS = 10.0
"""One core does 100 jobs/s in these results."""


def scenario(
    workload: str,
    mode: str,
    *,
    workers: int = 1,
    pool_size: int = 0,
    jobs_s: float,
    ideal: float | None,
    lag_p99: float = 1.0,
    io_p99: float | None = None,
    cpus: float | None = None,
    throttled: tuple[int, int] | None = None,
    pipeline_ms: float | None = None,
) -> ScenarioResult:
    latency = LatencySummary(p50=10.0, p95=20.0, p99=30.0, max=40.0)
    name = f"{workload}/{mode}-{workers}w" + (f"x{pool_size}" if pool_size else "")
    if cpus is not None:
        name = f"{workload}/containers-{mode}-{workers}wx{pool_size}-cpus{cpus:g}"
    return ScenarioResult(
        name=name,
        label=name,
        lesson="",
        mode=mode,
        workers=workers,
        pool_size=pool_size,
        runners=64,
        workload=workload,
        n=50_000,
        io_ms=50,
        jobs=1000,
        failed=0,
        duration_s=10.0,
        throughput_jobs_s=jobs_s,
        ideal_jobs_s=ideal,
        efficiency=None if ideal is None else round(jobs_s / ideal, 3),
        cores_usable=min(2, workers * (pool_size or 1)),
        latency_ms=latency,
        io_latency_ms=None
        if io_p99 is None
        else LatencySummary(p50=60.0, p95=io_p99, p99=io_p99, max=io_p99),
        loop_lag_ms=LagSummary(p50=0.5, p99=lag_p99, max=lag_p99, samples=200),
        loop_lag_per_worker={},
        cpu_percent={"worker-1": 50.0},
        pipeline_cpu_ms_per_job=pipeline_ms,
        latency_cdf_ms=[float(q) for q in range(101)],
        io_latency_cdf_ms=None if io_p99 is None else [float(q) for q in range(101)],
        container_cpus=cpus,
        throttling=None
        if throttled is None
        else Throttling(
            throttled_periods=throttled[0], periods=throttled[1], throttled_s=throttled[0] / 20
        ),
    )


def good_run(**changes: Any) -> CompareResults:
    """A run on a quiet 2-core machine where every claim holds; ``changes`` spoil it."""
    figures = {
        "cpu_one": 95.0,
        "cpu_pool": 186.0,
        "pool_pipeline_ms": 0.6,
        "prefork": 184.0,
        "cpu_replicas": 178.0,
        "io_one": 480.0,
        "blocked_lag": 60.0,
        "pooled_lag": 2.0,
        "unsafe_lost": 1900,
        "safe_lost": 0,
        "cross_safe_lost": 0,
        "naive_throttled": 33,
        "fitted_throttled": 1,
        **changes,
    }
    return CompareResults(
        started_at="2026-01-01T00:00:00+00:00",
        duration_s=300.0,
        quick=False,
        machine=Machine(
            cores=2,
            cpu_model="test",
            python="3.11",
            implementation="CPython",
            gil=True,
            platform="test",
            load_average=[0.1, 0.1, 0.1],
            cluster="local processes",
            container_engine="podman",
            cpu_count=2,
        ),
        calibration=Calibration(
            n=50_000,
            cpu_job_ms=CPU_JOB_MS,
            cpu_job_fastest_ms=9.5,
            cpu_job_wall_ms=11.0,
            samples_ms=[9.5, 10.0, 10.5],
            cores=2,
            overhead_jobs_s=2000,
            prefork_jobs_s=figures["prefork"],
            prefork_step_ms=10.3,
        ),
        settings={"io_ms": 1000, "mixed_io_ms": 50},
        scenarios=[
            scenario("overhead", "blocking", jobs_s=2000.0, ideal=None),
            scenario("io", "blocking", jobs_s=figures["io_one"], ideal=500.0),
            scenario("cpu", "blocking", jobs_s=figures["cpu_one"], ideal=100.0, lag_p99=300),
            scenario(
                "cpu",
                "processes",
                pool_size=2,
                jobs_s=figures["cpu_pool"],
                ideal=200.0,
                pipeline_ms=figures["pool_pipeline_ms"],
            ),
            scenario("cpu", "blocking", workers=2, jobs_s=figures["cpu_replicas"], ideal=200.0),
            scenario(
                "mixed",
                "blocking",
                jobs_s=150.0,
                ideal=150.0,
                lag_p99=figures["blocked_lag"],
                io_p99=400.0,
            ),
            scenario(
                "mixed",
                "processes",
                pool_size=2,
                jobs_s=150.0,
                ideal=150.0,
                lag_p99=figures["pooled_lag"],
                io_p99=70.0,
            ),
            scenario(
                "cpu",
                "processes",
                pool_size=2,
                jobs_s=90.0,
                ideal=100.0,
                lag_p99=40.0,
                cpus=1.0,
                throttled=(int(figures["naive_throttled"]), 47),
            ),
            scenario(
                "cpu",
                "processes",
                pool_size=1,
                jobs_s=95.0,
                ideal=100.0,
                cpus=1.0,
                throttled=(int(figures["fitted_throttled"]), 45),
            ),
        ],
        race=RaceResults(
            tasks=100,
            rounds=20,
            unsafe=RaceOutcome.of(2000, 2000 - figures["unsafe_lost"]),
            safe=RaceOutcome.of(2000, 2000 - figures["safe_lost"]),
            cross_process=CrossProcessRace(
                processes=2,
                tasks_per_process=4,
                unsafe=RaceOutcome.of(800, 300),
                safe=RaceOutcome.of(800, 800 - figures["cross_safe_lost"]),
                local_lock=RaceOutcome.of(800, 500),
            ),
        ),
    )


@pytest.fixture
def make_run() -> Callable[..., CompareResults]:
    return good_run
