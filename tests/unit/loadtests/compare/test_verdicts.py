from collections.abc import Callable

import pytest

from loadtests.compare.cpustat import Throttling
from loadtests.compare.results import CompareResults
from loadtests.compare.verdicts import QUOTA_CLAIM, claims, targets

MakeRun = Callable[..., CompareResults]


def verdicts(run: CompareResults) -> dict[int, str]:
    return {claim.number: claim.verdict for claim in claims(run)}


def test_a_good_run_supports_every_claim_and_passes_every_target(make_run: MakeRun) -> None:
    run = make_run()
    assert verdicts(run) == dict.fromkeys((1, 2, 3, 4, 5, QUOTA_CLAIM), "supported")
    assert all(target.passed for target in targets(run))
    speedup = next(t for t in targets(run) if t.name.startswith("process pool /"))
    assert (speedup.figure, speedup.threshold) == (pytest.approx(1.958, abs=1e-3), ">= 1.6x")


@pytest.mark.parametrize(
    ("spoiled", "missed"),
    [
        ({"cpu_pool": 180.0, "prefork": 176.0}, "process pool efficiency on cpu, quiet-machine"),
        ({"pool_pipeline_ms": 0.9}, "process pool on cpu: pipeline CPU ms/job, quiet-machine"),
        ({"prefork": 190.0}, "process pool efficiency / a bare prefork pool's, cpu"),
    ],
)
def test_issue_14s_pool_targets(make_run: MakeRun, spoiled: dict[str, float], missed: str) -> None:
    """0.90 of the ideal still supports claim 3 (>= 0.85) but misses the quiet-machine
    target (>= 0.92); the pipeline may be 0.087 of a job (3.8 ms of a 44 ms job, 0.87 of
    these 10 ms jobs); and the pool must reach a bare prefork pool's efficiency."""
    run = make_run(**spoiled)
    assert verdicts(run)[3] == "supported"
    failed = [t for t in targets(run) if t.passed is False]
    assert [t.name for t in failed] == [next(t.name for t in failed if t.name.startswith(missed))]
    pipeline = next(t for t in targets(run) if "pipeline CPU" in t.name)
    assert pipeline.threshold.startswith("<= 0.9 (0.087 x")
    assert run.calibration.prefork_efficiency == round(spoiled.get("prefork", 184.0) / 200, 3)


@pytest.mark.parametrize(
    ("spoiled", "failing"),
    [
        ({"io_one": 300.0}, {1}),
        ({"cpu_one": 130.0}, {1, 3, 4}),
        ({"pooled_lag": 30.0}, {2, 3}),
        ({"cpu_pool": 140.0}, {3}),
        ({"cpu_replicas": 120.0}, {4}),
        ({"unsafe_lost": 0}, {5}),
        ({"safe_lost": 3}, {5}),
        ({"cross_safe_lost": 1}, {5}),
        ({"naive_throttled": 3}, {QUOTA_CLAIM}),
        ({"fitted_throttled": 30}, {QUOTA_CLAIM}),
    ],
)
def test_a_missed_figure_fails_the_claims_built_on_it(
    make_run: MakeRun, spoiled: dict[str, float], failing: set[int]
) -> None:
    result = verdicts(make_run(**spoiled))
    assert {number for number, v in result.items() if v == "not supported"} == failing
    assert {v for number, v in result.items() if number not in failing} == {"supported"}


def test_a_pool_that_fits_the_quota_may_touch_it_in_most_periods(make_run: MakeRun) -> None:
    """One child filling the quota plus the worker's loop is throttled in most periods, a
    millisecond each; the naive pool waits most of every period. The claim holds."""
    run = make_run()
    naive, fitted = (s for s in run.scenarios if s.container_cpus is not None)
    run.scenarios = [s for s in run.scenarios if s.container_cpus is None] + [
        naive.model_copy(
            update={"throttling": Throttling(periods=104, throttled_periods=103, throttled_s=9.74)}
        ),
        fitted.model_copy(
            update={"throttling": Throttling(periods=102, throttled_periods=83, throttled_s=0.12)}
        ),
    ]
    assert verdicts(run)[QUOTA_CLAIM] == "supported"


def test_a_failed_scenario_leaves_its_claims_not_measured(make_run: MakeRun) -> None:
    run = make_run()
    run.scenarios = [s for s in run.scenarios if s.workload != "mixed"]
    result = verdicts(run)
    assert result[2] == "not measured"
    assert result[3] == "not measured"
    assert result[4] == "supported"
    lag = next(t for t in targets(run) if "loop lag" in t.name)
    assert (lag.figure, lag.passed) == (None, None)


def test_without_a_container_engine_the_quota_claim_is_not_measured(make_run: MakeRun) -> None:
    run = make_run()
    run.machine.container_engine = None
    run.scenarios = [s for s in run.scenarios if s.container_cpus is None]
    quota = next(c for c in claims(run) if c.number == QUOTA_CLAIM)
    assert quota.verdict == "not measured"
    assert "make up ENGINE=podman" in quota.evidence


def test_container_rows_do_not_stand_in_for_local_ones(make_run: MakeRun) -> None:
    run = make_run()
    run.scenarios = [s for s in run.scenarios if s.name != "cpu/processes-1wx2"]
    assert verdicts(run)[3] == "not measured"


def test_the_prefork_pool_run_beside_the_scenario_is_the_yardstick(make_run: MakeRun) -> None:
    """The calibration's prefork (minutes earlier) loses to the one run right after the
    pool's scenario, under the same conditions: a slower machine then lowers both."""
    run = make_run(cpu_pool=150.0, prefork=190.0)
    pool = next(s for s in run.scenarios if s.workload == "cpu" and s.mode == "processes")
    index = run.scenarios.index(pool)
    run.scenarios[index] = pool.model_copy(update={"prefork_jobs_s": 148.0})
    against_prefork = next(t for t in targets(run) if "bare prefork" in t.name)
    assert against_prefork.figure == pytest.approx(150 / 148, abs=1e-3)
    assert against_prefork.passed


def test_the_quiet_machine_targets_are_not_judged_on_a_machine_whose_speed_swung(
    make_run: MakeRun,
) -> None:
    """The calibration's step went from 9.5 to 14 ms over the run: an efficiency against it
    says more about the host than about the pool, so those two targets are left unjudged
    with the reason, and every other target is judged as before."""
    steady = make_run(cpu_pool=180.0, prefork=176.0)
    swung = make_run(cpu_pool=180.0, prefork=176.0)
    swung.calibration.samples_ms = [9.5, 9.6, 9.8, 10.0, 10.0, 10.2, 12.0, 13.5, 14.0]

    assert steady.calibration.step_spread is None
    assert swung.calibration.step_spread == pytest.approx(1.47, abs=0.01)
    judged = {t.name: t for t in targets(steady)}
    unjudged = {t.name: t for t in targets(swung)}
    quiet = [name for name in judged if "quiet-machine" in name]
    assert len(quiet) == 2 and judged[quiet[0]].passed is False
    for name in quiet:
        assert unjudged[name].passed is None and unjudged[name].figure == judged[name].figure
        assert "not a quiet machine" in (unjudged[name].note or "")
    others = [name for name in judged if name not in quiet]
    assert [unjudged[n].passed for n in others] == [judged[n].passed for n in others]
