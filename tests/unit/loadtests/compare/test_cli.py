import pytest

from loadtests.compare.calibrate import Calibration
from loadtests.compare.cli import failed_result, starved, with_ideal
from loadtests.compare.clusters import WORKER_HEARTBEAT_S, fast_heartbeats
from loadtests.compare.scenarios import Plan, Scenario, Workload
from shared.settings import WorkerMode

from .conftest import scenario


@pytest.mark.parametrize(
    ("workload", "cores", "expected"),
    [("cpu", 1.9, False), ("cpu", 1.2, True), ("mixed", 0.3, False), ("cpu", None, False)],
)
def test_a_cpu_scenario_is_starved_when_its_workers_got_too_few_cores(
    workload: str, cores: float | None, expected: bool
) -> None:
    result = scenario(workload, "processes", pool_size=2, jobs_s=100.0, ideal=200.0)
    result = result.model_copy(update={"workers_cores": cores})
    assert starved(result) is expected


def test_a_failed_scenario_is_never_retried_as_starved() -> None:
    failed = failed_result(Scenario(Workload.CPU, WorkerMode.BLOCKING, 1, 0, ""), "boom")
    assert failed.error == "boom"
    assert not starved(failed)


def test_only_the_workers_beat_fast() -> None:
    """The windows are bracketed by worker heartbeats; the gateway and the aggregator keep
    their default interval, whose CPU the window would otherwise count."""
    assert fast_heartbeats() == {"COORD_HEARTBEAT_S": str(WORKER_HEARTBEAT_S)}
    assert fast_heartbeats({"PYTHON_GIL": "0"}) == {
        "PYTHON_GIL": "0",
        "COORD_HEARTBEAT_S": str(WORKER_HEARTBEAT_S),
    }


def test_the_pipeline_cpu_is_taken_again_against_the_final_calibration() -> None:
    """The calibration's samples span the run: a scenario measured while the early samples
    were slow would otherwise keep a pipeline of 0 ms beside a faster final step."""
    result = scenario("cpu", "processes", pool_size=2, jobs_s=150.0, ideal=None)
    result = result.model_copy(update={"cpu_ms_per_job": 12.5, "pipeline_cpu_ms_per_job": 0.0})
    calibration = Calibration(
        n=50_000,
        cpu_job_ms=10.0,
        cpu_job_fastest_ms=9.0,
        cpu_job_wall_ms=11.0,
        cores=2,
        samples_ms=[10.0],
    )
    plan = Plan(quick=True, cores=2)
    final = with_ideal(
        result, Scenario(Workload.CPU, WorkerMode.PROCESSES, 1, 2, ""), plan, calibration
    )
    assert final.ideal_jobs_s == 200.0 and final.efficiency == 0.75
    assert final.pipeline_cpu_ms_per_job == 2.5
