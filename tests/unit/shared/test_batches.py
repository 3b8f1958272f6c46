import pytest

from shared.batches import percentile


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


@pytest.mark.parametrize("q", [1, 50, 99])
def test_percentile_is_a_member(q: float) -> None:
    values = sorted([0.3, 9.1, 2.2, 4.4])
    assert percentile(values, q) in values
