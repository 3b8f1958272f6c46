import pytest

from loadtests.compare.calibrate import (
    Calibration,
    calibrate,
    ideal_jobs_s,
    mixed_rates,
    prefork,
)
from loadtests.compare.scenarios import Plan, Scenario, Workload, container_matrix, matrix
from shared.settings import WorkerMode


def test_the_quick_matrix_holds_what_the_claims_need_and_the_ceiling_runs_first() -> None:
    scenarios = matrix(Plan.for_run(quick=True, cores=2))
    names = [s.name for s in scenarios]
    assert names[0] == "overhead/blocking-1w"
    assert names.index("overhead/blocking-1w") < names.index("io/blocking-1w")
    for needed in (
        "cpu/blocking-1w",
        "cpu/processes-1wx2",
        "cpu/blocking-2w",
        "mixed/blocking-1w",
        "mixed/processes-1wx2",
    ):
        assert needed in names
    assert len(set(names)) == len(names)


def test_the_full_matrix_adds_threads_and_an_oversized_pool() -> None:
    quick = {s.name for s in matrix(Plan.for_run(quick=True, cores=4))}
    full = {s.name for s in matrix(Plan.for_run(quick=False, cores=4))}
    assert quick < full
    assert full - quick == {"cpu/threads-1wx4", "cpu/processes-1wx8", "mixed/threads-1wx4"}
    assert "cpu/blocking-4w" in full


@pytest.mark.parametrize(
    ("mode", "workers", "pool_size", "cores", "usable"),
    [
        (WorkerMode.BLOCKING, 1, 0, 8, 1),
        (WorkerMode.THREADS, 1, 8, 8, 1),
        (WorkerMode.PROCESSES, 1, 2, 8, 2),
        (WorkerMode.PROCESSES, 1, 16, 8, 8),
        (WorkerMode.BLOCKING, 4, 0, 2, 2),
        (WorkerMode.BLOCKING, 2, 0, 1, 1),
    ],
)
def test_cores_usable(
    mode: WorkerMode, workers: int, pool_size: int, cores: int, usable: int
) -> None:
    scenario = Scenario(Workload.CPU, mode, workers, pool_size, "")
    assert scenario.cores_usable(cores) == usable


def test_ideals_follow_the_calibration_and_the_ceiling() -> None:
    plan = Plan.for_run(quick=False, cores=2)
    calibration = Calibration(
        n=plan.n,
        cpu_job_ms=10.0,
        cpu_job_fastest_ms=9.5,
        cpu_job_wall_ms=12.0,
        samples_ms=[10.0],
        cores=2,
    )
    pool = Scenario(Workload.CPU, WorkerMode.PROCESSES, 1, 2, "")
    assert ideal_jobs_s(pool, plan, calibration) == pytest.approx(200.0)
    io = Scenario(Workload.IO, WorkerMode.BLOCKING, 1, 0, "")
    in_flight_limit = plan.io_runners * 1000 / plan.io_ms
    assert ideal_jobs_s(io, plan, calibration) == pytest.approx(in_flight_limit)
    capped = calibration.model_copy(update={"overhead_jobs_s": in_flight_limit / 2})
    assert ideal_jobs_s(io, plan, capped) == pytest.approx(in_flight_limit / 2)
    mixed = Scenario(Workload.MIXED, WorkerMode.BLOCKING, 1, 0, "")
    assert ideal_jobs_s(mixed, plan, calibration) == pytest.approx(
        sum(mixed_rates(plan, calibration))
    )
    assert mixed_rates(plan, calibration)[0] == pytest.approx(plan.mixed_cpu_load * 100)
    overhead = Scenario(Workload.OVERHEAD, WorkerMode.BLOCKING, 1, 0, "")
    assert ideal_jobs_s(overhead, plan, calibration) is None


def test_calibration_times_one_job() -> None:
    calibration = calibrate(5_000, runs=3)
    assert 0 < calibration.cpu_job_fastest_ms <= calibration.cpu_job_ms
    assert calibration.cores >= 1


def test_the_prefork_baseline_runs_one_job_per_task_in_children() -> None:
    baseline = prefork(5_000, 2, seconds=0.05, rounds=2)
    assert baseline.jobs_s > 0
    assert baseline.step_ms > 0


def test_container_scenarios_pit_a_cpu_count_pool_against_one_sized_by_the_quota() -> None:
    quick = container_matrix(Plan.for_run(quick=True, cores=2), cpu_count=2)
    assert [s.name for s in quick] == [
        "cpu/containers-processes-1wx2-cpus1",
        "cpu/containers-processes-1wxquota-cpus1",
    ]
    naive, fitted = quick
    assert (naive.effective_pool_size, fitted.effective_pool_size) == (2, 1)
    assert naive.cores_usable(2) == fitted.cores_usable(2) == 1
    assert "sized by the quota" in fitted.label
    full = {s.name for s in container_matrix(Plan.for_run(quick=False, cores=2), cpu_count=2)}
    assert "cpu/containers-blocking-2w-cpus1" in full
    assert {
        "mixed/containers-processes-1wx2-cpus1",
        "mixed/containers-processes-1wxquota-cpus1",
    } < full
