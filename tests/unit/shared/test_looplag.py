import asyncio
import time

from shared.looplag import LoopLagMonitor


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
