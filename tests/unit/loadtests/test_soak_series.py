from pathlib import Path

import pytest

from loadtests.soak import series as series_module
from loadtests.soak.series import Sample, draw, slopes


def series(values: list[float], name: str = "batch_keys") -> list[Sample]:
    return [Sample(at_s=float(t), values={name: v}) for t, v in enumerate(values)]


def test_a_level_series_is_flat_and_a_climbing_one_is_not() -> None:
    level = slopes(series([1000 + (t % 3) * 10 for t in range(60)]), warm_up_s=0, tolerance=0.1)
    climbing = slopes(series([1000 + 20 * t for t in range(60)]), warm_up_s=0, tolerance=0.1)
    assert level[0].flat and abs(level[0].slope_per_min) < 20
    assert not climbing[0].flat and climbing[0].slope_per_min == 1200


def test_warm_up_samples_are_not_judged() -> None:
    ramp_then_level = [float(min(t, 10) * 100) for t in range(60)]
    judged = slopes(series(ramp_then_level), warm_up_s=15, tolerance=0.1)
    assert judged[0].flat and judged[0].samples == 45


def test_a_small_mean_is_judged_against_the_unit_floor() -> None:
    """A queue holding 0..6 messages is not leaking, whatever its relative drift."""
    queue = [float(t % 7) + t / 30 for t in range(60)]
    assert slopes(series(queue, "queue:jobs"), warm_up_s=0, tolerance=0.1)[0].flat


def test_the_chart_is_drawn(tmp_path: Path) -> None:
    samples = [
        Sample(at_s=float(t), values={"rss_mb:gateway": 50.0, "queue:jobs": 1.0, "x_ms": 2.0})
        for t in range(10)
    ]
    assert draw(samples, warm_up_s=3, path=tmp_path / "chart.png")
    assert (tmp_path / "chart.png").stat().st_size > 1000


def test_without_matplotlib_the_soak_keeps_its_results_and_draws_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(series_module, "pyplot", lambda: None)
    samples = [Sample(at_s=float(t), values={"rss_mb:gateway": 50.0}) for t in range(5)]
    assert not draw(samples, warm_up_s=1, path=tmp_path / "chart.png")
    assert not (tmp_path / "chart.png").exists()
