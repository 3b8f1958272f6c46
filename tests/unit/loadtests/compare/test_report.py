import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from loadtests.compare.report import render
from loadtests.compare.results import CompareResults, cdf_points
from loadtests.compare.verdicts import claims, targets
from loadtests.reports import point_latest
from shared.histogram import LATENCY_BUCKETS


def test_report_files_and_latest_link(
    make_run: Callable[..., CompareResults], tmp_path: Path
) -> None:
    run = make_run()
    run.targets, run.claims = targets(run), claims(run)
    for stamp in ("20260101-000000", "20260101-000100"):
        assert render(run, tmp_path / stamp) == []
        point_latest(tmp_path / stamp)
    latest = tmp_path / "latest"
    assert latest.is_symlink() and latest.resolve() == (tmp_path / "20260101-000100").resolve()
    for name in ("results.json", "report.md", "throughput.png", "latency.png", "loop_lag.png"):
        assert (latest / name).stat().st_size > 0
    data = json.loads((latest / "results.json").read_text())
    assert data["calibration"]["cpu_job_ms"] == 10.0
    assert data["calibration"]["prefork_efficiency"] == 0.92
    first = data["scenarios"][2]
    for field in ("name", "mode", "workers", "pool_size", "workload", "jobs"):
        assert field in first
    assert set(first["latency_ms"]) >= {"p50", "p95", "p99"}
    assert set(first["loop_lag_ms"]) >= {"p50", "p99", "max"}
    assert data["race"]["unsafe"] == {"expected": 2000, "observed": 100, "lost": 1900}
    assert CompareResults.model_validate_json((latest / "results.json").read_text()) == run
    report = (latest / "report.md").read_text()
    assert report.count("**supported**") == 6
    assert "| cpu/processes-1wx2 |" in report
    assert "| cpu/containers-processes-1wx2-cpus1 | " in report
    assert "| 33 of 47 | 1.65 |" in report
    assert "A bare prefork pool (multiprocessing.Pool, one job per task) does 184 jobs/s" in report
    assert "![throughput.png](throughput.png)" in report


def test_cdf_points_span_every_percentile() -> None:
    histogram = Counter(LATENCY_BUCKETS.index(float(v)) for v in range(1, 1001))
    points = cdf_points(histogram)
    assert len(points) == 101
    for point, exact in zip(
        (points[0], points[50], points[100]), (1.0, 500.0, 1000.0), strict=True
    ):
        assert abs(point - exact) <= exact * LATENCY_BUCKETS.relative_error + 0.05
    assert points == sorted(points)
    assert cdf_points({}) == []


def test_without_an_engine_the_report_says_how_to_get_the_container_rows(
    make_run: Callable[..., CompareResults], tmp_path: Path
) -> None:
    run = make_run()
    run.machine.container_engine = None
    run.scenarios = [s for s in run.scenarios if s.container_cpus is None]
    run.targets, run.claims = targets(run), claims(run)
    render(run, tmp_path)
    section = (tmp_path / "report.md").read_text().split("## Containers with a CPU quota")[1]
    assert section.strip().startswith("Not run: no container engine answers. `make up ENGINE")


def test_a_container_pool_is_split_against_the_step_timed_in_its_image(
    make_run: Callable[..., CompareResults], tmp_path: Path
) -> None:
    run = make_run()
    rows = [r for r in run.scenarios if r.container_cpus is not None]
    timed = [
        r.model_copy(
            update={
                "image_step_ms": [8.0 + index, 8.2 + index, 7.9 + index],
                "worker_python": "3.11.2",
                "pool_step_cpu_ms_per_job": 8.5,
                "pipeline_cpu_ms_per_job": 1.0,
            }
        )
        for index, r in enumerate(rows)
    ]
    run.scenarios = [r for r in run.scenarios if r.container_cpus is None] + timed
    render(run, tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert (
        "the image runs Python 3.11.2, whose step took 8 to 9 ms against this "
        "interpreter's 10.0 ms" in report
    )
    split = "the step took 8.5 ms of a child's CPU per job against 8 ms timed alone in a worker"
    assert split in report
    assert "container of its image (+0.50 ms), so 0.5 ms of CPU per job ran outside" in report


def test_the_calibration_says_which_side_of_the_quiet_bound_it_fell(
    make_run: Callable[..., CompareResults], tmp_path: Path
) -> None:
    """1.052 rounds to 1.05, the bound itself: the report keeps three places and says above."""
    run = make_run()
    run.calibration.samples_ms = [100.0] * 2 + [105.2] * 3 + [100.0] * 5
    render(run, tmp_path)
    report = (tmp_path / "report.md").read_text()
    spread = run.calibration.step_spread
    assert spread is not None and spread > 1.05
    assert f"p90/p10 {spread:.3f}, above the 1.05 of a quiet machine;" in report
