"""Sampled series of a soak, and the judgement that each one is flat after warm-up.

A series is flat when the straight line fitted through its samples after warm-up drifts,
over the measured window, by no more than a fraction of its mean or a small absolute
amount for its unit (a queue that holds 3 messages on average may hold 9 without
anything leaking): ``|slope| * window <= max(tolerance * |mean|, floor)``.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from pydantic import BaseModel

from loadtests.charts import pyplot

FLOORS = {"MB": 8.0, "keys": 60.0, "messages": 200.0, "ms": 15.0}
"""The absolute drift over the window that counts as flat whatever the mean, per unit."""


class Sample(BaseModel):
    at_s: float
    values: dict[str, float]


class Slope(BaseModel):
    series: str
    unit: str
    samples: int
    mean: float
    slope_per_min: float
    drift: float
    """The fitted line's change over the measured window."""
    allowed: float
    flat: bool


def unit_of(series: str) -> str:
    if series.startswith("rss_mb:") or series == "redis_used_memory_mb":
        return "MB"
    if series.startswith("queue:"):
        return "messages"
    if series.endswith("_ms"):
        return "ms"
    return "keys"


def slopes(samples: list[Sample], *, warm_up_s: float, tolerance: float) -> list[Slope]:
    """One judged slope per series, over the samples taken after ``warm_up_s``."""
    measured = [s for s in samples if s.at_s >= warm_up_s]
    names = sorted({name for sample in measured for name in sample.values})
    judged = []
    for name in names:
        points = [(s.at_s, s.values[name]) for s in measured if name in s.values]
        if len(points) < 3:
            continue
        times, values = zip(*points, strict=True)
        window = times[-1] - times[0]
        if window <= 0:
            continue
        slope = statistics.linear_regression(times, values).slope
        mean = statistics.fmean(values)
        unit = unit_of(name)
        allowed = max(tolerance * abs(mean), FLOORS[unit])
        drift = slope * window
        judged.append(
            Slope(
                series=name,
                unit=unit,
                samples=len(points),
                mean=round(mean, 3),
                slope_per_min=round(slope * 60, 4),
                drift=round(drift, 3),
                allowed=round(allowed, 3),
                flat=abs(drift) <= allowed,
            )
        )
    return judged


def draw(samples: list[Sample], *, warm_up_s: float, path: Path) -> bool:
    """One panel per unit, every series of that unit over time, warm-up shaded; False
    when there is nothing to draw or no matplotlib to draw it with."""
    plt = pyplot()
    if plt is None or not samples:
        return False

    by_unit: dict[str, list[str]] = {}
    for name in sorted({n for s in samples for n in s.values}):
        by_unit.setdefault(unit_of(name), []).append(name)
    figure, axes = plt.subplots(len(by_unit), 1, figsize=(10, 3 * len(by_unit)), sharex=True)
    for axis, (unit, names) in zip(
        axes if len(by_unit) > 1 else [axes], by_unit.items(), strict=True
    ):
        for name in names:
            points = [(s.at_s, s.values[name]) for s in samples if name in s.values]
            axis.plot([t for t, _ in points], [v for _, v in points], label=name, linewidth=1)
        axis.axvspan(0, warm_up_s, color="grey", alpha=0.15)
        axis.set_ylabel(unit)
        axis.set_ylim(bottom=0)
        axis.legend(fontsize=7, loc="upper left", ncol=3)
    figure.axes[-1].set_xlabel("seconds (grey: warm-up, not judged)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True
