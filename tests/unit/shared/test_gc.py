"""Long collector pauses are kept for the log, and the start-up heap can be frozen."""

from __future__ import annotations

import gc

from structlog.testing import capture_logs

from shared.gcfreeze import freeze_startup_heap
from shared.gcpauses import GcPauses


def test_a_collection_at_or_above_the_threshold_is_kept_and_flushed_once() -> None:
    with GcPauses(threshold_ms=0.0) as pauses:
        gc.collect()
        (pause,) = [p for p in pauses.flush() if p.generation == 2]
        assert pause.wall_ms >= 0 and pause.cpu_ms >= 0 and pause.collected >= 0
        assert pauses.flush() == []
    assert pauses.observe not in gc.callbacks


def test_pauses_kept_are_logged_at_a_lag_sample_and_at_exit() -> None:
    with capture_logs() as logs, GcPauses(threshold_ms=0.0) as pauses:
        gc.collect()
        pauses.log_kept(0.001)
        assert 2 in [line["generation"] for line in logs if line["event"] == "gc_pause"]
        gc.collect()
        logged = len(logs)
    assert len(logs) > logged, "what the last collection kept is logged on the way out"


def test_a_collection_below_the_threshold_is_not_kept() -> None:
    with GcPauses(threshold_ms=60_000.0) as pauses:
        gc.collect()
    assert pauses.flush() == []


def test_freezing_moves_what_lives_out_of_the_collections() -> None:
    try:
        frozen = freeze_startup_heap()
        assert frozen == gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
