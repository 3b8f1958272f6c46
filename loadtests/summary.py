"""Totals and percentiles per request type, merged from Locust's own histograms.

Locust's table has one row per name; the summary merges rows (all POSTs, all HTTP requests,
all batches) with ``StatsEntry.extend``, so its percentiles are those of the merged
histogram, not averages of per-row percentiles.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from locust.stats import RequestStats, StatsEntry

from loadtests.names import BATCH_REQUEST_TYPE

PERCENTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


def entry_summary(entry: StatsEntry) -> dict[str, Any]:
    return {
        "requests": entry.num_requests,
        "failures": entry.num_failures,
        "rps": round(entry.total_rps, 2),
        "avg_ms": round(entry.avg_response_time, 1),
        **{
            f"{key}_ms": entry.get_response_time_percentile(q) if entry.num_requests else None
            for key, q in PERCENTILES.items()
        },
        "max_ms": round(entry.max_response_time, 1),
    }


def merged(stats: RequestStats, label: str, keep: Callable[[StatsEntry], bool]) -> StatsEntry:
    total = StatsEntry(stats, label, "", use_response_times_cache=False)
    for entry in stats.entries.values():
        if keep(entry):
            total.extend(entry)
    return total


def summarize(stats: RequestStats) -> dict[str, Any]:
    """Groups ``POST``, ``GET``, ``HTTP`` (both) and ``BATCH``, then every row by name."""
    is_batch: Callable[[StatsEntry], bool] = lambda e: e.method == BATCH_REQUEST_TYPE  # noqa: E731
    groups = {
        "POST": merged(stats, "POST", lambda e: e.method == "POST"),
        "GET": merged(stats, "GET", lambda e: e.method == "GET"),
        "HTTP": merged(stats, "HTTP", lambda e: not is_batch(e)),
        "BATCH": merged(stats, "BATCH", is_batch),
    }
    rows = sorted(stats.entries.values(), key=lambda e: (e.method, e.name))
    return {
        "groups": {label: entry_summary(entry) for label, entry in groups.items()},
        "rows": [{"type": e.method, "name": e.name, **entry_summary(e)} for e in rows],
        "errors": [
            {"type": e.method, "name": e.name, "error": str(e.error), "occurrences": e.occurrences}
            for e in stats.errors.values()
        ],
    }


def write_summary(stats: RequestStats, path: Path, **context: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**context, **summarize(stats)}, indent=2))
