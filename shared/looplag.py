"""How late the event loop wakes up: the figure that shows a blocked loop.

A task sleeps for a short interval again and again; whatever it oversleeps is time the
loop spent on something that did not yield (a CPU step, a blocking call).

The sleep is short (``interval_s``) while the loop's thread is busy and longer
(``idle_interval_s``) while it is not. On a small VM every wake-up of an idle process costs
a couple of hundred microseconds of CPU, whatever little it does, so three services sampling
twenty times a second spent more CPU, idle, than anything else they did; a busy loop is
awake anyway. A sleep's length never depends on the lag itself, so the samples stay a
uniform draw over time, only fewer while the loop idles.

Besides a recent window, the monitor keeps a cumulative histogram of every sample with
fixed geometric buckets. Two heartbeats' histograms subtract, so anyone reading the
heartbeats (the comparison) gets the lag distribution of exactly the interval between
them, without a control channel into the service.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping

from pydantic import BaseModel

from shared.batches import percentile
from shared.histogram import LogBuckets
from shared.periodic import periodic

LagObserver = Callable[[float], None]
RECENT_S = 2.0

LAG_BUCKET_FLOOR_MS = 0.01
LAG_BUCKET_RATIO = 1.1
LAG_BUCKETS = 200
LAG = LogBuckets(LAG_BUCKET_FLOOR_MS, LAG_BUCKET_RATIO, LAG_BUCKETS)


def lag_bucket(lag_ms: float) -> int:
    """Index of the bucket holding ``lag_ms``: bucket i covers (floor*r^(i-1), floor*r^i]."""
    return LAG.index(lag_ms)


def lag_bucket_value_ms(index: int) -> float:
    """The geometric middle of a bucket: within 5% of every value the bucket holds."""
    return LAG.value(index)


BUSY_SHARE = 0.1
"""The share of its thread's time a loop must have used over the last sleep for the next
sleep to be the short one."""


class LoopLagMonitor:
    def __init__(
        self, interval_s: float, *, idle_interval_s: float | None = None, window: int = 2000
    ) -> None:
        self.interval_s = interval_s
        self.idle_interval_s = max(interval_s, idle_interval_s or interval_s)
        self.samples: deque[tuple[float, float]] = deque(maxlen=window)
        """(when, lag in ms) of the latest samples."""
        self.max_ms = 0.0
        self.histogram: Counter[int] = Counter()
        self.observers: list[LagObserver] = []
        self.slept_at = 0.0
        self.cpu_at = 0.0
        self.sleeping_s = interval_s

    async def run(self) -> None:
        self.slept_at, self.cpu_at = time.perf_counter(), time.thread_time()
        await asyncio.sleep(self.sleeping_s)
        await periodic("loop_lag", self.sample, self.next_sleep, survives=())

    def next_sleep(self) -> float:
        return self.sleeping_s

    async def sample(self) -> None:
        """Record how much longer than asked the last sleep took, and choose the next."""
        now, cpu = time.perf_counter(), time.thread_time()
        elapsed = now - self.slept_at
        lag_ms = max(0.0, (elapsed - self.sleeping_s) * 1000)
        self.samples.append((now, lag_ms))
        self.max_ms = max(self.max_ms, lag_ms)
        self.histogram[lag_bucket(lag_ms)] += 1
        for observe in self.observers:
            observe(lag_ms / 1000)
        busy = elapsed <= 0 or (cpu - self.cpu_at) >= BUSY_SHARE * elapsed
        self.sleeping_s = self.interval_s if busy else self.idle_interval_s
        self.slept_at, self.cpu_at = time.perf_counter(), time.thread_time()

    def snapshot(self, since: float | None = None) -> dict[str, object]:
        """p50, p99 and max over the window (or its samples taken from ``since`` on, a
        ``time.perf_counter()`` reading), the max since start, in ms; over the whole window
        also the cumulative histogram since start (bucket index -> samples, empty buckets
        left out), whose difference between two snapshots is the lag of the time between
        them.

        The dashboard asks for the last couple of seconds, so a stall shows at once and
        fades once the loop is responsive again.
        """
        if since is None:
            samples = [lag_ms for _, lag_ms in self.samples]
        else:
            samples = [lag_ms for at, lag_ms in self.samples if at >= since]
            samples = samples or [lag_ms for _, lag_ms in list(self.samples)[-1:]]
        ordered = sorted(samples)
        figures: dict[str, object] = {
            "p50": _round(percentile(ordered, 50)),
            "p99": _round(percentile(ordered, 99)),
            "max": _round(ordered[-1] if ordered else None),
            "max_since_start": round(self.max_ms, 3),
        }
        if since is None:
            figures["histogram"] = {
                str(index): count for index, count in sorted(self.histogram.items())
            }
        return figures

    def recent_snapshot(self, seconds: float = RECENT_S) -> dict[str, object]:
        """:meth:`snapshot` over the samples of the last ``seconds`` (the latest one alone
        where none is that recent: a loop stalled for longer)."""
        return self.snapshot(since=time.perf_counter() - seconds)

    def reset(self) -> None:
        self.samples.clear()
        self.max_ms = 0.0
        self.histogram.clear()


def histogram_delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[int, int]:
    """Samples taken between two snapshots' histograms, by bucket index."""
    delta = {int(k): v - int(before.get(k, 0)) for k, v in after.items()}
    return {index: count for index, count in delta.items() if count > 0}


class LagSummary(BaseModel):
    """Loop lag over some interval, in ms, from a histogram (each figure within 5%)."""

    p50: float | None
    p99: float | None
    max: float | None
    samples: int


def summarize_histogram(counts: Mapping[int, int]) -> LagSummary:
    total = sum(counts.values())
    if total == 0:
        return LagSummary(p50=None, p99=None, max=None, samples=0)
    ordered = sorted(counts.items())

    def at_rank(q: float) -> float:
        rank = max(1, math.ceil(q / 100 * total))
        seen = 0
        for index, count in ordered:
            seen += count
            if seen >= rank:
                return round(lag_bucket_value_ms(index), 3)
        return round(lag_bucket_value_ms(ordered[-1][0]), 3)

    return LagSummary(
        p50=at_rank(50),
        p99=at_rank(99),
        max=round(lag_bucket_value_ms(ordered[-1][0]), 3),
        samples=total,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
