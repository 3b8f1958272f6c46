"""The runtime dimension without the interpreter: rows, yardsticks, verdicts and the report."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from loadtests.compare import runtimes
from loadtests.compare.report import markdown
from loadtests.compare.results import (
    CompareResults,
    RaceOutcome,
    RuntimeCalibration,
    RuntimeComparison,
    ThreadRace,
)
from loadtests.compare.runtime_verdicts import runtime_claims, runtime_targets
from loadtests.compare.scenarios import Plan, Scenario, Workload
from loadtests.compare.verdicts import claims
from shared.settings import WorkerMode

from .conftest import scenario

MakeRun = Callable[..., CompareResults]

FT_JOB_MS = 15.0
"""The free-threaded build is 50% slower on one thread in these results."""


def calibration(runtime: str, ms: float, *, gil: bool) -> RuntimeCalibration:
    python = "3.11.7" if runtime == "default" else ("3.13.15" if runtime == "gil" else "3.13.15t")
    return RuntimeCalibration(
        runtime=runtime, python=python, gil=gil, cpu_job_ms=ms, samples_ms=[ms] * 6
    )


def with_runtimes(
    run: CompareResults,
    *,
    ft_jobs_s: float = 125.0,
    gil_jobs_s: float = 66.0,
    interpreters_jobs_s: float = 115.0,
    lost: int = 5000,
) -> CompareResults:
    """Add the runtime rows: 2 threads under ft, the same with the GIL on, subinterpreters."""
    ft_ideal, gil_ideal = 2 * 1000 / FT_JOB_MS, 1000 / 16.0
    rows = [
        ("threads", "ft", ft_jobs_s, ft_ideal),
        ("threads", "ft-gil", gil_jobs_s, gil_ideal),
        ("interpreters", "ft-gil", interpreters_jobs_s, 2 * gil_ideal),
    ]
    for mode, runtime, jobs_s, ideal in rows:
        row = scenario("cpu", mode, pool_size=2, jobs_s=jobs_s, ideal=ideal)
        run.scenarios.append(
            row.model_copy(update={"runtime": runtime, "name": f"{row.name}@{runtime}"})
        )
    run.runtimes = RuntimeComparison(
        available=True,
        calibrations=[
            calibration("default", 10.0, gil=True),
            calibration("ft", FT_JOB_MS, gil=False),
            calibration("ft-gil", 16.0, gil=True),
        ],
        thread_races=[
            ThreadRace(
                runtime="ft",
                python="3.13.15t",
                gil=False,
                threads=2,
                rounds=100_000,
                unsafe=RaceOutcome.of(200_000, 200_000 - lost),
                safe=RaceOutcome.of(200_000, 200_000),
            )
        ],
    )
    return run


def test_names_labels_and_usable_cores_follow_the_runtime() -> None:
    ft = Scenario(Workload.CPU, WorkerMode.THREADS, 1, 2, "", "ft")
    gil = Scenario(Workload.CPU, WorkerMode.THREADS, 1, 2, "", "ft-gil")
    interpreters = Scenario(Workload.CPU, WorkerMode.INTERPRETERS, 1, 2, "", "ft-gil")
    assert (ft.name, ft.label) == ("cpu/threads-1wx2@ft", "1 loop, 2 threads (3.13t, GIL off)")
    assert gil.name == "cpu/threads-1wx2@ft-gil"
    assert interpreters.label == "1 loop, 2 subinterpreters (3.13t, GIL on)"
    assert (ft.cores_usable(2), gil.cores_usable(2), interpreters.cores_usable(2)) == (2, 1, 2)
    assert Scenario(Workload.CPU, WorkerMode.THREADS, 1, 4, "", "ft").cores_usable(2) == 2


def test_without_the_interpreter_there_are_no_rows_and_one_line_says_how(monkeypatch) -> None:
    monkeypatch.setattr(runtimes, "ft_available", lambda: False)
    comparison = runtimes.calibrate_runtimes(1000, rounds=1)
    assert not comparison.available
    assert "make python-ft" in comparison.note
    assert runtimes.runtime_matrix(Plan.for_run(quick=False, cores=2), comparison) == []


def test_with_the_interpreter_quick_runs_cpu_rows_and_full_runs_mixed_too() -> None:
    available = RuntimeComparison(available=True)
    quick = runtimes.runtime_matrix(Plan.for_run(quick=True, cores=2), available)
    full = runtimes.runtime_matrix(Plan.for_run(quick=False, cores=2), available)
    assert [s.name for s in quick] == [
        "cpu/threads-1wx2@ft",
        "cpu/threads-1wx2@ft-gil",
        "cpu/interpreters-1wx2@ft-gil",
    ]
    assert {s.workload for s in full} == {Workload.CPU, Workload.MIXED}


def test_a_runtime_row_is_measured_against_its_own_single_core_time(make_run: MakeRun) -> None:
    run = with_runtimes(make_run())
    ft = Scenario(Workload.CPU, WorkerMode.THREADS, 1, 2, "", "ft")
    default = Scenario(Workload.CPU, WorkerMode.THREADS, 1, 2, "")
    assert runtimes.calibration_for(ft, run.calibration, run.runtimes).cpu_job_ms == FT_JOB_MS
    assert runtimes.calibration_for(default, run.calibration, run.runtimes) is run.calibration


def test_a_good_run_supports_the_runtime_claims(make_run: MakeRun) -> None:
    run = with_runtimes(make_run())
    claims = {claim.number: claim for claim in runtime_claims(run)}
    assert {n: c.verdict for n, c in claims.items()} == dict.fromkeys((6, 7, 8), "supported")
    assert claims[8].text.startswith("The free-threaded build costs 50% on one thread")
    assert all(target.passed for target in runtime_targets(run))


@pytest.mark.parametrize(
    ("spoiled", "failing"),
    [
        ({"ft_jobs_s": 90.0}, {6}),
        ({"gil_jobs_s": 120.0}, {6}),
        ({"interpreters_jobs_s": 70.0}, {7}),
    ],
)
def test_a_missed_runtime_figure_fails_its_claim(
    make_run: MakeRun, spoiled: dict[str, float], failing: set[int]
) -> None:
    claims = runtime_claims(with_runtimes(make_run(), **spoiled))
    assert {c.number for c in claims if c.verdict == "not supported"} == failing


def test_the_default_claims_ignore_the_runtime_rows(make_run: MakeRun) -> None:
    run = with_runtimes(make_run())
    run.scenarios = [
        s
        for s in run.scenarios
        if not (s.mode == "blocking" and s.workload == "cpu" and s.workers == 1)
    ]
    assert next(c for c in claims(run) if c.number == 1).verdict == "not measured"


def test_the_same_source_gil_build_is_the_cost_baseline_when_built(make_run: MakeRun) -> None:
    run = with_runtimes(make_run())
    assert run.runtimes is not None
    run.runtimes.calibrations.append(calibration("gil", 12.0, gil=True))
    cost = next(c for c in runtime_claims(run) if c.number == 8)
    assert (
        cost.text
        == "The free-threaded build costs 25% on one thread (against the GIL build of 3.13.15)."
    )


def test_the_report_shows_the_runtimes_or_how_to_get_them(make_run: MakeRun) -> None:
    run = with_runtimes(make_run())
    text = markdown(run, charts=[])
    assert "## Runtimes" in text
    assert "| free-threaded, GIL off | 3.13.15t | off | 15.0 | 6 | +50% |" in text
    assert (
        "| free-threaded, GIL off | 3.13.15t | off | 2 x 100,000 | 5,000 of 200,000 | 0 |" in text
    )
    assert "cpu/threads-1wx2@ft" in text
    bare = make_run()
    bare.runtimes = RuntimeComparison(available=False, note=runtimes.NOT_BUILT)
    lines = [line for line in markdown(bare, charts=[]).splitlines() if "make python-ft" in line]
    assert lines == [runtimes.NOT_BUILT]


def test_a_container_row_is_measured_against_the_step_timed_in_its_image(
    make_run: MakeRun,
) -> None:
    """The image's interpreter is not this one (a PGO build ran the step a fifth faster
    here): its own samples win over the runtime's and the calibration's."""
    run = with_runtimes(make_run())
    ft = Scenario(Workload.CPU, WorkerMode.THREADS, 1, 2, "", "ft")
    in_image = runtimes.calibration_for(ft, run.calibration, run.runtimes, [8.0, 7.0, 9.5])
    assert (in_image.cpu_job_ms, in_image.cpu_job_fastest_ms) == (8.0, 7.0)
    assert in_image.cores == run.calibration.cores
    assert runtimes.calibration_for(ft, run.calibration, run.runtimes, []).cpu_job_ms == FT_JOB_MS
