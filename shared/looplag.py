"""How late the event loop wakes up: the figure that shows a blocked loop.

A task sleeps for a short interval again and again; whatever it oversleeps is time the
loop spent on something that did not yield (a CPU step, a blocking call).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from shared.batches import percentile

LagObserver = Callable[[float], None]
RECENT_S = 2.0


class LoopLagMonitor:
    def __init__(self, interval_s: float, *, window: int = 2000) -> None:
        self.interval_s = interval_s
        self.samples_ms: deque[float] = deque(maxlen=window)
        self.max_ms = 0.0
        self.observers: list[LagObserver] = []

    async def run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self.interval_s)
            lag_ms = max(0.0, (time.perf_counter() - started - self.interval_s) * 1000)
            self.samples_ms.append(lag_ms)
            self.max_ms = max(self.max_ms, lag_ms)
            for observe in self.observers:
                observe(lag_ms / 1000)

    def snapshot(self, last: int | None = None) -> dict[str, float | None]:
        """p50, p99 and max over the window (or its ``last`` samples), the max since start, in ms.

        The dashboard asks for the last couple of seconds, so a stall shows at once and
        fades once the loop is responsive again.
        """
        samples = list(self.samples_ms)[-last:] if last else self.samples_ms
        ordered = sorted(samples)
        return {
            "p50": _round(percentile(ordered, 50)),
            "p99": _round(percentile(ordered, 99)),
            "max": _round(ordered[-1] if ordered else None),
            "max_since_start": round(self.max_ms, 3),
        }

    def recent_snapshot(self, seconds: float = RECENT_S) -> dict[str, float | None]:
        """:meth:`snapshot` over about the last ``seconds`` of samples (fewer when lagging)."""
        return self.snapshot(last=max(1, round(seconds / self.interval_s)))

    def reset(self) -> None:
        self.samples_ms.clear()
        self.max_ms = 0.0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
