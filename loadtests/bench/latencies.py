"""The latency figures of a steady-rate run, the same for the bare relay and the cluster."""

from __future__ import annotations

import math
from collections.abc import Mapping

from shared.histogram import LATENCY_BUCKETS


def latency_figures(
    counts: Mapping[int, int], *, rate_jobs_s: float, late_ms: list[float]
) -> dict[str, float | None]:
    """Percentiles of the bucket ``counts`` (the cluster's latency buckets), and how late
    the sender was at p99: a sender far behind means the machine, not the path, set the pace."""
    summary = LATENCY_BUCKETS.summarize(counts)
    return {
        "rate_jobs_s": round(rate_jobs_s, 1),
        "jobs": summary.count,
        "p50": summary.p50,
        "p95": summary.p95,
        "p99": summary.p99,
        "sender_late_ms_p99": round(sorted(late_ms)[math.ceil(0.99 * len(late_ms)) - 1], 1),
    }
