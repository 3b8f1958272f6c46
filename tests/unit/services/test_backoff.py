"""Retry and deferral delays: validated, capped, and always one of the fixed delay queues."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.worker.consumer import MAX_DEFER_S, backoff_s
from shared.names import RETRY_DELAYS_MS, Names, retry_delay_ms
from shared.settings import load_settings


def test_a_zero_backoff_is_refused() -> None:
    with pytest.raises(ValidationError, match="retry_backoff_s"):
        load_settings(retry_backoff_s=0)
    with pytest.raises(ValidationError, match="retry_max_delay_s"):
        load_settings(retry_max_delay_s=3600)


def test_delays_are_capped_and_tiered() -> None:
    settings = load_settings(retry_backoff_s=0.2, max_attempts=20)
    delays = [backoff_s(settings, attempt - 1) for attempt in range(1, 21)]
    assert delays[:4] == [0.1, 0.25, 0.5, 1.0]
    assert max(delays) == settings.retry_max_delay_s == 30
    assert all(round(d * 1000) in RETRY_DELAYS_MS for d in delays)
    assert sum(delays) < 20 * 30  # was 0.2 * (2**20 - 1) s, about 58 hours in all
    assert max(backoff_s(settings, n, cap_s=MAX_DEFER_S) for n in range(50)) <= MAX_DEFER_S


def test_a_delay_maps_to_the_longest_queue_at_or_below_it() -> None:
    assert retry_delay_ms(0.001) == 100
    assert retry_delay_ms(0.3) == 250
    assert retry_delay_ms(1e9) == 60_000
    assert len(set(Names("ns").delay_queues)) == len(RETRY_DELAYS_MS)
