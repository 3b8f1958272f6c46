"""Verdicts of the runtime rows: threads without the GIL, subinterpreters, one thread's cost.

The rows' yardstick is their own runtime's single-core time per job (a free-threaded build is
slower on one thread), so an efficiency says how many cores the topology used, not how
fast the build is; the build's cost is a claim of its own.
"""

from __future__ import annotations

from loadtests.compare.results import Claim, CompareResults, ScenarioResult, Target
from loadtests.compare.results import figure_text as num
from loadtests.compare.verdicts import (
    ONE_CORE_SLACK,
    SPEEDUP_SHARE,
    at_least,
    at_most,
    efficiency,
    lag_p99,
    lost_updates,
    maximum,
    minimum,
    verdict,
)

THREADS_EFFICIENCY = SPEEDUP_SHARE
"""'Near the cores' ideal': the same 0.8 of the usable cores as every speed-up claim."""
COST_NOISE = 0.02
"""A single-thread cost under 2% is within what alternating rounds can tell apart here."""


def find_runtime(
    results: CompareResults, workload: str, mode: str, runtime: str
) -> ScenarioResult | None:
    for result in results.scenarios:
        if (
            result.error is None
            and result.runtime == runtime
            and result.workload == workload
            and result.mode == mode
            and result.pool_size == results.calibration.cores
        ):
            return result
    return None


def cores_worth(result: ScenarioResult | None, results: CompareResults) -> float | None:
    """Throughput in cores' worth of the row's own runtime's single-core rate."""
    runtimes = results.runtimes
    own = None if result is None or runtimes is None else runtimes.calibration(result.runtime)
    if result is None or own is None or own.cpu_job_ms <= 0:
        return None
    return round(result.throughput_jobs_s * own.cpu_job_ms / 1000, 3)


class RuntimeFigures:
    def __init__(self, results: CompareResults) -> None:
        runtimes = results.runtimes
        self.measured = runtimes is not None and runtimes.available
        self.ft_threads = find_runtime(results, "cpu", "threads", "ft")
        self.gil_threads = find_runtime(results, "cpu", "threads", "ft-gil")
        self.interpreters = find_runtime(results, "cpu", "interpreters", "ft-gil")
        self.mixed_ft = find_runtime(results, "mixed", "threads", "ft")
        self.mixed_gil = find_runtime(results, "mixed", "threads", "ft-gil")
        self.mixed_interpreters = find_runtime(results, "mixed", "interpreters", "ft-gil")
        self.ft_cores = cores_worth(self.ft_threads, results)
        self.gil_cores = cores_worth(self.gil_threads, results)
        self.interpreters_cores = cores_worth(self.interpreters, results)
        default = runtimes.calibration("default") if runtimes else None
        ft = runtimes.calibration("ft") if runtimes else None
        gil = runtimes.calibration("ft-gil") if runtimes else None
        same_source = runtimes.calibration("gil") if runtimes else None
        self.default_cal, self.ft_cal, self.gil_cal = default, ft, gil
        self.same_source_cal = same_source
        self.baseline = same_source or default
        """The GIL build of the same source where it was built, else the default interpreter."""
        self.cost = (
            round(ft.cpu_job_ms / self.baseline.cpu_job_ms - 1, 3)
            if ft is not None and self.baseline is not None and self.baseline.cpu_job_ms > 0
            else None
        )
        races = {race.runtime: race for race in runtimes.thread_races} if runtimes else {}
        self.ft_race = races.get("ft")
        self.default_race = races.get("default")


def runtime_targets(results: CompareResults) -> list[Target]:
    f = RuntimeFigures(results)
    if not f.measured:
        return []
    race = f.ft_race
    return [
        minimum(
            "free-threaded build, threads, GIL off: efficiency on cpu",
            efficiency(f.ft_threads),
            THREADS_EFFICIENCY,
        ),
        maximum(
            "free-threaded build, threads, GIL on: cores' worth on cpu", f.gil_cores, ONE_CORE_SLACK
        ),
        minimum(
            "subinterpreters in one process: efficiency on cpu",
            efficiency(f.interpreters),
            THREADS_EFFICIENCY,
        ),
        lost_updates(
            "threads race on the free-threaded build: updates lost without a lock",
            race.unsafe if race else None,
            guarded=False,
        ),
        lost_updates(
            "threads race on the free-threaded build: updates lost with threading.Lock",
            race.safe if race else None,
            guarded=True,
        ),
    ]


def claim_free_threads(f: RuntimeFigures) -> Claim:
    row = f.ft_threads
    evidence = (
        f"cpu, {row.pool_size if row else '?'} threads under "
        f"{f.ft_cal.python if f.ft_cal else '3.13t'}: GIL off "
        f"{num(row.throughput_jobs_s if row else None)} jobs/s = {num(efficiency(row))} of its "
        f"ideal {num(row.ideal_jobs_s if row else None)} jobs/s ({num(f.ft_cores)} cores' "
        f"worth, target >= {THREADS_EFFICIENCY}); GIL on (PYTHON_GIL=1) "
        f"{num(f.gil_threads.throughput_jobs_s if f.gil_threads else None)} jobs/s = "
        f"{num(f.gil_cores)} cores' worth"
    )
    if f.mixed_ft is not None or f.mixed_gil is not None:
        evidence += (
            f"; mixed: loop lag p99 {num(lag_p99(f.mixed_ft))} ms with the GIL off, "
            f"{num(lag_p99(f.mixed_gil))} ms with it on"
        )
    race = f.ft_race
    if race is not None:
        evidence += (
            f"; and shared state races between threads: {race.unsafe.lost:,} of "
            f"{race.unsafe.expected:,} updates lost without a lock, {race.safe.lost} with "
            "threading.Lock"
        )
        if f.default_race is not None:
            evidence += f" ({f.default_race.unsafe.lost:,} lost under the GIL)"
    return Claim(
        number=6,
        text="On a free-threaded build, threads give parallelism.",
        verdict=verdict(
            [
                at_least(efficiency(f.ft_threads), THREADS_EFFICIENCY),
                at_most(f.gil_cores, ONE_CORE_SLACK),
            ]
        ),
        evidence=evidence,
    )


def claim_subinterpreters(f: RuntimeFigures) -> Claim:
    row = f.interpreters
    evidence = (
        f"cpu, {row.pool_size if row else '?'} subinterpreters in one worker process "
        f"({f.gil_cal.python if f.gil_cal else '3.13t'} with PYTHON_GIL=1, where its threads "
        f"did {num(f.gil_cores)} cores' worth): {num(row.throughput_jobs_s if row else None)} "
        f"jobs/s = {num(efficiency(row))} of its ideal {num(row.ideal_jobs_s if row else None)} "
        f"jobs/s ({num(f.interpreters_cores)} cores' worth, target >= {THREADS_EFFICIENCY})"
    )
    if f.mixed_interpreters is not None:
        evidence += f"; mixed: loop lag p99 {num(lag_p99(f.mixed_interpreters))} ms"
    return Claim(
        number=7,
        text="Subinterpreters give parallelism in one process.",
        verdict=verdict([at_least(efficiency(row), THREADS_EFFICIENCY)]),
        evidence=evidence,
    )


def claim_cost(f: RuntimeFigures) -> Claim:
    percent = "X" if f.cost is None else f"{f.cost * 100:.0f}"
    if f.same_source_cal is not None:
        base = f"the GIL build of {f.same_source_cal.python}"
    else:
        base = f.default_cal.python if f.default_cal else "the default interpreter"
    evidence = "not measured"
    if f.baseline and f.ft_cal:
        evidence = (
            f"one cpu job on one core, median of {len(f.ft_cal.samples_ms)} runs each in "
            f"alternating rounds: {f.ft_cal.python} GIL off {f.ft_cal.cpu_job_ms} ms"
        )
        if f.gil_cal is not None:
            evidence += f", GIL on {f.gil_cal.cpu_job_ms} ms"
        if f.same_source_cal is not None:
            evidence += f"; {f.same_source_cal.python} GIL build {f.same_source_cal.cpu_job_ms} ms"
        if f.default_cal is not None:
            evidence += (
                f"; this project's default {f.default_cal.python} {f.default_cal.cpu_job_ms} ms"
            )
        if f.same_source_cal is None:
            evidence += " (the GIL build of the same source, the fairer baseline, is not built)"
    return Claim(
        number=8,
        text=f"The free-threaded build costs {percent}% on one thread (against {base}).",
        verdict=verdict([None if f.cost is None else f.cost > COST_NOISE]),
        evidence=evidence,
    )


def runtime_claims(results: CompareResults) -> list[Claim]:
    f = RuntimeFigures(results)
    if not f.measured:
        return []
    return [claim_free_threads(f), claim_subinterpreters(f), claim_cost(f)]
