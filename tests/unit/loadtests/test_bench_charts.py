"""The benchmarks' charts, drawn from results.json alone (real matplotlib, files on disk)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from loadtests.bench import charts
from loadtests.bench.charts import (
    BENCH_CHARTS,
    GATEWAY_CHARTS,
    bench_charts,
    gateway_charts,
    latency_tool_charts,
)
from loadtests.bench.latencies import latency_figures
from loadtests.charts import charts_lines
from shared.histogram import LATENCY_BUCKETS

PNG = b"\x89PNG\r\n\x1a\n"
pytest.importorskip("matplotlib")


def cdf(p50: float, p99: float) -> list[float]:
    counts: dict[int, int] = {}
    for value, times in ((p50 * 0.5, 10), (p50, 80), (p50 * 1.5, 9), (p99, 1)):
        index = LATENCY_BUCKETS.index(value)
        counts[index] = counts.get(index, 0) + times
    return LATENCY_BUCKETS.cdf(counts)


def bench_results() -> dict[str, Any]:
    cpu = {"broker": 800.0, "worker-1": 700.0, "aggregator": 450.0, "total": 1950.0}
    ceiling_cpu = {"broker": 790.0, "relay": 600.0, "total": 1390.0}
    rounds = [
        {
            "round": index,
            "ceiling": {"jobs_s": ceiling, "cpu_us": ceiling_cpu, "load_average": 1.0},
            "cluster": {
                "1": {"jobs_s": one, "cpu_us": cpu, "load_average": 1.0},
                "2": {"jobs_s": two, "cpu_us": cpu, "load_average": 1.0},
            },
            "ratio": max(one, two) / ceiling,
        }
        for index, (ceiling, one, two) in enumerate(
            ((900.0, 800.0, 760.0), (880.0, 830.0, 700.0), (1000.0, 790.0, 780.0)), start=1
        )
    ]
    return {
        "rounds": rounds,
        "ratio": 0.9,
        "note": "broker and redis are shared with other users",
        "cpu_us": {"ceiling": ceiling_cpu, "1 worker(s)": cpu, "2 worker(s)": cpu},
        "latency_ms": {
            "rate_jobs_s": 400.0,
            "workers": 1,
            "p99": 20.0,
            "rounds": [{"p99": 20.0, "cdf_ms": cdf(12, 20)} for _ in range(3)],
        },
        "broker_latency_ms": {"rounds": [{"p99": 18.0, "cdf_ms": cdf(11, 18)}]},
        "rss_series": [
            {"at_s": t, "worker-1": 60.0 + t / 10, "aggregator": 58.0} for t in range(10)
        ],
    }


def gateway_results(*, two: bool) -> dict[str, Any]:
    medians = [
        {"target": target, "users": users, "rps": rps, "p99_ms": p99}
        for target, users, rps, p99 in (
            ("gateway", 100, 500.0, 300.0),
            ("publish", 100, 700.0, 200.0),
            ("gateway", 10, 300.0, 60.0),
            ("publish", 10, 400.0, 40.0),
        )
    ]
    run_cpu = {"gateway": 98, "broker": 45, "locust": 30, "machine (all processes)": 189}
    results: dict[str, Any] = {
        "runs": [],
        "medians": medians,
        "overhead": [
            {"users": 100, "baseline": "publish", "gateway_share": 0.71},
            {"users": 10, "baseline": "publish", "gateway_share": 0.75},
        ],
        "two_gateways": None,
    }
    if two:
        both = {**run_cpu, "gateway-2": 60}
        results["two_gateways"] = {
            "users": 100,
            "ratio": 1.05,
            "target": 1.3,
            "gateway_cpus": None,
            "cores_allow": {"capacity_pct": 200, "machine_pct": 189, "rps": 500, "ratio": 1.06},
            "runs": {
                "1 gateway": [{"rps": 500.0, "cpu_pct": run_cpu}] * 3,
                "2 gateways": [{"rps": 525.0, "cpu_pct": both}] * 3,
            },
        }
    return results


def assert_pngs(folder: Path, names: list[str]) -> None:
    for name in names:
        data = (folder / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000, name


def test_make_bench_draws_its_four_charts(tmp_path: Path) -> None:
    written = bench_charts(bench_results(), tmp_path, ratio_target=0.8, p99_target_ms=20)
    assert written == list(BENCH_CHARTS)
    assert_pngs(tmp_path, written)


def test_a_run_without_latency_curves_leaves_that_chart_out(tmp_path: Path) -> None:
    results = bench_results()
    for key in ("latency_ms", "broker_latency_ms"):
        for r in results[key]["rounds"]:
            del r["cdf_ms"]
    written = bench_charts(results, tmp_path, ratio_target=0.8, p99_target_ms=20)
    assert "latency.png" not in written
    assert not (tmp_path / "latency.png").exists()
    assert any(
        "not drawn: latency.png" in line for line in charts_lines(tmp_path, written, BENCH_CHARTS)
    )


@pytest.mark.parametrize("two", [True, False])
def test_bench_gateway_draws_rates_and_the_two_gateway_rounds(tmp_path: Path, two: bool) -> None:
    written = gateway_charts(gateway_results(two=two), tmp_path, share_target=0.7)
    assert written == (list(GATEWAY_CHARTS) if two else ["gateway_rates.png"])
    assert_pngs(tmp_path, written)


def test_the_latency_tool_draws_every_run_round_by_round(tmp_path: Path) -> None:
    rounds = [
        {"relay": {"cdf_ms": cdf(11, 18)}, "cluster": {"cdf_ms": cdf(13, 21)}} for _ in range(2)
    ]
    results = {"rate_jobs_s": 355.0, "workers": 2, "rounds": rounds}
    assert latency_tool_charts(results, tmp_path, p99_target_ms=20) == ["latency.png"]
    assert_pngs(tmp_path, ["latency.png"])


def test_without_matplotlib_nothing_is_drawn_and_the_run_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(charts, "pyplot", lambda: None)
    assert bench_charts(bench_results(), tmp_path, ratio_target=0.8, p99_target_ms=20) == []
    assert gateway_charts(gateway_results(two=True), tmp_path, share_target=0.7) == []
    assert list(tmp_path.iterdir()) == []
    (line,) = charts_lines(tmp_path, [], BENCH_CHARTS)
    assert line.startswith("not drawn: throughput.png, cpu_per_job.png")
    assert "pip install '.[report]'" in line


def test_latency_figures_carry_the_distribution_for_the_chart() -> None:
    counts = {LATENCY_BUCKETS.index(v): 1 for v in (1.0, 2.0, 5.0, 10.0, 50.0)}
    figures = latency_figures(counts, rate_jobs_s=100, late_ms=[0.5])
    curve = figures["cdf_ms"]
    assert len(curve) == 101
    assert curve == sorted(curve)
    assert curve[99] == pytest.approx(figures["p99"], rel=0.01)


def test_the_command_redraws_a_saved_run_and_refuses_a_bad_path(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps(gateway_results(two=True)))
    runner = CliRunner()
    app = charts.typer.Typer()
    app.command()(charts.main)
    drawn = runner.invoke(app, [str(tmp_path / "results.json")])
    assert drawn.exit_code == 0, drawn.output
    assert "gateways.png" in drawn.output
    assert_pngs(tmp_path, list(GATEWAY_CHARTS))
    missing = runner.invoke(app, [str(tmp_path / "nothing.json")])
    assert missing.exit_code == 1
    assert "cannot read" in missing.output
    assert "Traceback" not in missing.output


def test_the_committed_example_run_redraws_from_its_results(tmp_path: Path) -> None:
    example = Path(charts.__file__).parent / "example" / "bench" / "results.json"
    results = json.loads(example.read_text())
    written = bench_charts(results, tmp_path, ratio_target=0.8, p99_target_ms=20)
    assert written == list(BENCH_CHARTS)
    assert_pngs(tmp_path, written)


def test_the_committed_gateway_run_redraws_from_its_results(tmp_path: Path) -> None:
    example = Path(charts.__file__).parent / "example" / "gateway" / "results.json"
    results = json.loads(example.read_text())
    written = gateway_charts(results, tmp_path, share_target=0.7)
    assert written == list(GATEWAY_CHARTS)
    assert_pngs(tmp_path, written)
