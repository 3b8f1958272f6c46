"""Log-spaced histograms: a fixed number of counters that summarise any number of values.

Bucket ``i`` counts the values in ``(floor * ratio**(i-1), floor * ratio**i]`` (bucket 0
everything up to ``floor``, the last bucket everything above). A bucket is reported as its
geometric middle, which is within ``sqrt(ratio) - 1`` of every value it holds (4.9% for a
ratio of 1.1). Histograms of the same spacing add and subtract bucket by bucket, so they
merge across batches and difference across time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel


class HistogramSummary(BaseModel):
    """Percentiles of a histogram's values (each within the spacing's relative error)."""

    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None
    count: int


@dataclass(frozen=True)
class LogBuckets:
    floor: float
    ratio: float
    buckets: int

    @property
    def relative_error(self) -> float:
        return math.sqrt(self.ratio) - 1

    def index(self, value: float) -> int:
        if not value > self.floor:
            return 0
        index = math.ceil(math.log(value / self.floor) / math.log(self.ratio))
        return min(self.buckets - 1, index)

    def value(self, index: int) -> float:
        """The geometric middle of bucket ``index``."""
        if index <= 0:
            return self.floor / 2
        return float(self.floor * self.ratio ** (index - 0.5))

    def upper_bound(self, index: int) -> float:
        """The largest value bucket ``index`` holds (infinite for the last one)."""
        return math.inf if index >= self.buckets - 1 else float(self.floor * self.ratio**index)

    def quantile(self, counts: Mapping[int, int], q: float) -> float | None:
        """Nearest-rank ``q``-th percentile (0..100) of the values counted in ``counts``."""
        total = sum(counts.values())
        if total == 0:
            return None
        rank = max(1, math.ceil(q / 100 * total))
        seen = 0
        ordered = sorted((index, count) for index, count in counts.items() if count > 0)
        for index, count in ordered:
            seen += count
            if seen >= rank:
                return self.value(index)
        return self.value(ordered[-1][0])

    def summarize(
        self, counts: Mapping[int, int], *, exact_max: float | None = None, digits: int = 3
    ) -> HistogramSummary:
        """p50, p95, p99 and max; an exactly kept ``exact_max`` caps them (no percentile
        can exceed the largest value)."""
        total = sum(counts.values())

        def at(q: float) -> float | None:
            value = self.quantile(counts, q)
            if value is None:
                return None
            if exact_max is not None:
                value = min(value, exact_max)
            return round(value, digits)

        top = exact_max if exact_max is not None else at(100)
        return HistogramSummary(
            p50=at(50),
            p95=at(95),
            p99=at(99),
            max=None if total == 0 or top is None else round(top, digits),
            count=total,
        )

    def cdf(self, counts: Mapping[int, int]) -> list[float]:
        """The value at each percentile 0..100, for plotting a distribution."""
        if not sum(counts.values()):
            return []
        return [round(self.quantile(counts, max(q, 1e-9)) or 0.0, 1) for q in range(101)]


LATENCY_BUCKETS = LogBuckets(floor=0.1, ratio=1.1, buckets=240)
"""Job latencies in ms: 0.1 ms up to about 9 days, 240 counters, within 4.9%."""
