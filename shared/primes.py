"""The CPU step: a plain top-level function, importable by a process pool, with no I/O."""

from __future__ import annotations


def count_primes(n: int) -> int:
    """Count the primes below ``n`` by trial division, in pure Python on purpose.

    The point is a known, deterministic amount of interpreter work (count_primes(10_000)
    is 1229), not a fast sieve.
    """
    if n <= 2:
        return 0
    count = 1
    for candidate in range(3, n, 2):
        divisor = 3
        is_prime = True
        while divisor * divisor <= candidate:
            if candidate % divisor == 0:
                is_prime = False
                break
            divisor += 2
        if is_prime:
            count += 1
    return count
