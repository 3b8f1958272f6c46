"""How late the event loop wakes up: the figure that shows a blocked loop.

A task sleeps for a short interval again and again; whatever it oversleeps is time the
loop spent on something that did not yield (a CPU step, a blocking call).

Besides a recent window, the monitor keeps a cumulative histogram of every sample with
fixed geometric buckets. Two heartbeats' histograms subtract, so anyone reading the
heartbeats (the comparison) gets the lag distribution of exactly the interval between
them, without a control channel into the service.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping

from pydantic import BaseModel

from shared.batches import percentile
from shared.histogram import LogBuckets
from shared.periodic import periodic

LagObserver = Callable[[float], None]
RECENT_S = 2.0

LAG_BUCKET_FLOOR_MS = 0.01
LAG_BUCKET_RATIO = 1.1
LAG_BUCKETS = 200
LAG = LogBuckets(LAG_BUCKET_FLOOR_MS, LAG_BUCKET_RATIO, LAG_BUCKETS)


def lag_bucket(lag_ms: float) -> int:
    """Index of the bucket holding ``lag_ms``: bucket i covers (floor*r^(i-1), floor*r^i]."""
    return LAG.index(lag_ms)


def lag_bucket_value_ms(index: int) -> float:
    """The geometric middle of a bucket: within 5% of every value the bucket holds."""
    return LAG.value(index)


class LoopLagMonitor:
    def __init__(self, interval_s: float, *, window: int = 2000) -> None:
        self.interval_s = interval_s
        self.samples_ms: deque[float] = deque(maxlen=window)
        self.max_ms = 0.0
        self.histogram: Counter[int] = Counter()
        self.observers: list[LagObserver] = []
        self.slept_at = 0.0

    async def run(self) -> None:
        self.slept_at = time.perf_counter()
        await asyncio.sleep(self.interval_s)
        await periodic("loop_lag", self.sample, self.interval_s, survives=())

    async def sample(self) -> None:
        """Record how much longer than ``interval_s`` the last sleep took."""
        lag_ms = max(0.0, (time.perf_counter() - self.slept_at - self.interval_s) * 1000)
        self.samples_ms.append(lag_ms)
        self.max_ms = max(self.max_ms, lag_ms)
        self.histogram[lag_bucket(lag_ms)] += 1
        for observe in self.observers:
            observe(lag_ms / 1000)
        self.slept_at = time.perf_counter()

    def snapshot(self, last: int | None = None) -> dict[str, object]:
        """p50, p99 and max over the window (or its ``last`` samples), the max since start, in
        ms; over the whole window also the cumulative histogram since start (bucket index ->
        samples, empty buckets left out), whose difference between two snapshots is the lag
        of the time between them.

        The dashboard asks for the last couple of seconds, so a stall shows at once and
        fades once the loop is responsive again.
        """
        samples = list(self.samples_ms)[-last:] if last else self.samples_ms
        ordered = sorted(samples)
        figures: dict[str, object] = {
            "p50": _round(percentile(ordered, 50)),
            "p99": _round(percentile(ordered, 99)),
            "max": _round(ordered[-1] if ordered else None),
            "max_since_start": round(self.max_ms, 3),
        }
        if not last:
            figures["histogram"] = {
                str(index): count for index, count in sorted(self.histogram.items())
            }
        return figures

    def recent_snapshot(self, seconds: float = RECENT_S) -> dict[str, object]:
        """:meth:`snapshot` over about the last ``seconds`` of samples (fewer when lagging)."""
        return self.snapshot(last=max(1, round(seconds / self.interval_s)))

    def reset(self) -> None:
        self.samples_ms.clear()
        self.max_ms = 0.0
        self.histogram.clear()


def histogram_delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[int, int]:
    """Samples taken between two snapshots' histograms, by bucket index."""
    delta = {int(k): v - int(before.get(k, 0)) for k, v in after.items()}
    return {index: count for index, count in delta.items() if count > 0}


class LagSummary(BaseModel):
    """Loop lag over some interval, in ms, from a histogram (each figure within 5%)."""

    p50: float | None
    p99: float | None
    max: float | None
    samples: int


def summarize_histogram(counts: Mapping[int, int]) -> LagSummary:
    total = sum(counts.values())
    if total == 0:
        return LagSummary(p50=None, p99=None, max=None, samples=0)
    ordered = sorted(counts.items())

    def at_rank(q: float) -> float:
        rank = max(1, math.ceil(q / 100 * total))
        seen = 0
        for index, count in ordered:
            seen += count
            if seen >= rank:
                return round(lag_bucket_value_ms(index), 3)
        return round(lag_bucket_value_ms(ordered[-1][0]), 3)

    return LagSummary(
        p50=at_rank(50),
        p99=at_rank(99),
        max=round(lag_bucket_value_ms(ordered[-1][0]), 3),
        samples=total,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
