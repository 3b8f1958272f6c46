import random

import pytest

from shared.batches import percentile
from shared.histogram import LATENCY_BUCKETS, LogBuckets


def histogram_of(values: list[float], buckets: LogBuckets = LATENCY_BUCKETS) -> dict[int, int]:
    counts: dict[int, int] = {}
    for value in values:
        index = buckets.index(value)
        counts[index] = counts.get(index, 0) + 1
    return counts


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("q", [50, 95, 99])
def test_percentiles_are_within_the_stated_relative_error(seed: int, q: float) -> None:
    rng = random.Random(seed)
    values = sorted(rng.lognormvariate(5, 1.5) for _ in range(5000))
    exact = percentile(values, q)
    estimate = LATENCY_BUCKETS.quantile(histogram_of(values), q)
    assert exact is not None and estimate is not None
    assert abs(estimate - exact) <= exact * LATENCY_BUCKETS.relative_error + 1e-9


def test_every_value_lands_in_a_bucket_that_holds_it() -> None:
    for value in (0.05, 0.1, 0.11, 1.0, 999.9, 1e6, 1e8):
        index = LATENCY_BUCKETS.index(value)
        upper = LATENCY_BUCKETS.upper_bound(index)
        lower = LATENCY_BUCKETS.upper_bound(index - 1) if index > 0 else 0.0
        assert lower < value <= upper or (index == 0 and value <= LATENCY_BUCKETS.floor)


def test_the_summary_never_exceeds_the_exact_max_and_the_size_is_fixed() -> None:
    counts = histogram_of([100.0] * 99 + [101.0])
    summary = LATENCY_BUCKETS.summarize(counts, exact_max=101.0)
    assert summary.count == 100 and summary.max == 101.0
    assert summary.p99 is not None and summary.p99 <= 101.0
    assert LATENCY_BUCKETS.index(1e30) == LATENCY_BUCKETS.buckets - 1
    assert LATENCY_BUCKETS.summarize({}).p50 is None
    assert round(LATENCY_BUCKETS.relative_error, 4) == 0.0488
