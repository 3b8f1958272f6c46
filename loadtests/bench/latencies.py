"""The latency figures of a steady-rate run, the same for the bare relay and the cluster."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from shared.histogram import LATENCY_BUCKETS


def latency_figures(
    counts: Mapping[int, int], *, rate_jobs_s: float, late_ms: list[float]
) -> dict[str, Any]:
    """Percentiles of the bucket ``counts`` (the cluster's latency buckets), and how late
    the sender was at p99: a sender far behind means the machine, not the path, set the pace.
    ``cdf_ms`` is the value at every percentile 0..100, for the latency chart."""
    summary = LATENCY_BUCKETS.summarize(counts)
    return {
        "rate_jobs_s": round(rate_jobs_s, 1),
        "jobs": summary.count,
        "p50": summary.p50,
        "p95": summary.p95,
        "p99": summary.p99,
        "sender_late_ms_p99": round(sorted(late_ms)[math.ceil(0.99 * len(late_ms)) - 1], 1),
        "cdf_ms": LATENCY_BUCKETS.cdf(counts),
    }


MEDIAN_KEYS = ("p50", "p95", "p99", "sender_late_ms_p99", "jobs", "load_average")


def median_figures(runs: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Each figure's median over alternating runs of one kind (to 0.1): on a shared machine a
    single run's p99 is whichever stall it met; a figure no run has is left out."""
    return {
        key: round(statistics.median(run[key] for run in runs if run.get(key) is not None), 1)
        for key in MEDIAN_KEYS
        if any(run.get(key) is not None for run in runs)
    }
