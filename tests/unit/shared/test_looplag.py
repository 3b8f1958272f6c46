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
