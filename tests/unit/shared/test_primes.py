import pytest

from shared.primes import count_primes


@pytest.mark.parametrize(
    ("n", "expected"),
    [(0, 0), (2, 0), (3, 1), (10, 4), (100, 25), (10_000, 1229), (100_000, 9592)],
)
def test_count_primes_known_answers(n: int, expected: int) -> None:
    assert count_primes(n) == expected


def test_count_primes_excludes_n_itself() -> None:
    assert count_primes(11) == 4
    assert count_primes(12) == 5
