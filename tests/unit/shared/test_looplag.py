import asyncio
import time

import pytest

from shared.looplag import (
    LoopLagMonitor,
    histogram_delta,
    lag_bucket,
    lag_bucket_value_ms,
    summarize_histogram,
)


async def test_loop_lag_shows_a_blocked_loop() -> None:
    monitor = LoopLagMonitor(0.01)
    task = asyncio.create_task(monitor.run())
    await asyncio.sleep(0.05)
    time.sleep(0.2)  # noqa: ASYNC251 - the blocked loop is what this test measures
    await asyncio.sleep(0.05)
    task.cancel()
    snapshot = monitor.snapshot()
    assert snapshot["max"] is not None and snapshot["max"] >= 150
    assert snapshot["p50"] is not None and snapshot["p50"] < 150


async def test_recent_snapshot_forgets_an_old_stall() -> None:
    monitor = LoopLagMonitor(0.01)
    task = asyncio.create_task(monitor.run())
    await asyncio.sleep(0.02)
    time.sleep(0.2)  # noqa: ASYNC251 - the stall the snapshot must first show, then forget
    await asyncio.sleep(0.02)
    stalled = monitor.recent_snapshot(0.5)
    await asyncio.sleep(0.8)
    task.cancel()
    assert stalled["max"] is not None and stalled["max"] >= 150
    recent = monitor.recent_snapshot(0.1)
    assert recent["max"] is not None and recent["max"] < 150
    assert monitor.snapshot()["max"] == monitor.snapshot()["max_since_start"]


def test_histogram_buckets_hold_values_within_five_percent() -> None:
    for lag_ms in (0.02, 0.5, 3.0, 17.0, 250.0, 4000.0):
        value = lag_bucket_value_ms(lag_bucket(lag_ms))
        assert abs(value - lag_ms) / lag_ms < 0.05 + 1e-9
    assert lag_bucket(0.0) == 0


def test_histograms_subtract_to_the_window_between_two_snapshots() -> None:
    monitor = LoopLagMonitor(0.05)
    for lag_ms in (0.1,) * 90:
        monitor.histogram[lag_bucket(lag_ms)] += 1
    before = monitor.snapshot()["histogram"]
    for lag_ms in [1.0] * 98 + [200.0, 200.0]:
        monitor.histogram[lag_bucket(lag_ms)] += 1
    after = monitor.snapshot()["histogram"]
    assert isinstance(before, dict) and isinstance(after, dict)
    summary = summarize_histogram(histogram_delta(before, after))
    assert summary.samples == 100
    assert summary.p50 == pytest.approx(1.0, rel=0.05)
    assert summary.p99 == pytest.approx(200.0, rel=0.05)
    assert summary.max == pytest.approx(200.0, rel=0.05)


def test_an_empty_window_has_no_figures() -> None:
    summary = summarize_histogram({})
    assert (summary.p50, summary.p99, summary.max, summary.samples) == (None, None, None, 0)


async def test_an_idle_loop_is_sampled_less_often_and_a_busy_one_at_once_again() -> None:
    monitor = LoopLagMonitor(0.01, idle_interval_s=0.1)
    task = asyncio.create_task(monitor.run())
    await asyncio.sleep(0.35)
    idle = len(monitor.samples)
    assert 2 <= idle <= 6, "after the first sample, about one every 0.1 s"
    assert monitor.next_sleep() == 0.1

    until = time.perf_counter() + 0.3
    while time.perf_counter() < until:
        sum(range(20_000))  # a loop busy with its own work, yielding between pieces
        await asyncio.sleep(0)
    busy = len(monitor.samples) - idle
    task.cancel()
    assert busy >= 15, "a busy loop is sampled every 0.01 s"
    lags = [lag_ms for _, lag_ms in monitor.samples]
    assert max(lags) < 100, "the longer sleep is not counted as lag"
