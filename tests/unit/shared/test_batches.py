import pytest

from shared.batches import percentile, summarize_latencies


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_summarize_sorts_first() -> None:
    summary = summarize_latencies([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (summary.p50, summary.max) == (3.0, 5.0)


@pytest.mark.parametrize("q", [1, 50, 99])
def test_percentile_is_a_member(q: float) -> None:
    values = sorted([0.3, 9.1, 2.2, 4.4])
    assert percentile(values, q) in values
