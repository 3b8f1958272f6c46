"""Garbage-collector pauses long enough to show in a job's latency, logged as ``gc_pause``.

While a collection runs, the event loop stands still. ``gc.callbacks`` times each one; those
whose own CPU time reaches ``threshold_ms`` are kept (by CPU, not wall time: on a busy
machine a young collection of 1 ms can take 20 ms of wall time because the core was taken
away, which is the machine's pause, not the collector's) and logged at the loop-lag
monitor's next sample (:meth:`GcPauses.log_kept`), a moment the loop is awake anyway, never
from inside the callback (which runs wherever an allocation set the collection off,
possibly in the middle of writing another log line). A task of its own woke every service
once a second, almost always to find nothing. Each line gives the
generation, the wall and CPU time and how many objects were freed, so a latency tail can be
set against the pauses of the same seconds (:mod:`loadtests.bench.latency` counts them).
"""

from __future__ import annotations

import gc
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger()

KEPT = 256
"""Pauses kept between two flushes at most; a flood of them drops the oldest."""


@dataclass(frozen=True)
class GcPause:
    at: float
    generation: int
    wall_ms: float
    cpu_ms: float
    collected: int


class GcPauses:
    def __init__(self, threshold_ms: float) -> None:
        self.threshold_ms = threshold_ms
        self.pauses: deque[GcPause] = deque(maxlen=KEPT)
        self.started = (0.0, 0.0)

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self.observe)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self.observe)
        self.log_kept()

    def observe(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = (time.perf_counter(), time.thread_time())
            return
        cpu_ms = (time.thread_time() - self.started[1]) * 1000
        if cpu_ms >= self.threshold_ms:
            wall_ms = (time.perf_counter() - self.started[0]) * 1000
            pause = GcPause(time.time(), info["generation"], wall_ms, cpu_ms, info["collected"])
            self.pauses.append(pause)

    def flush(self) -> list[GcPause]:
        flushed = list(self.pauses)
        self.pauses.clear()
        for pause in flushed:
            log.info(
                "gc_pause",
                generation=pause.generation,
                wall_ms=round(pause.wall_ms, 1),
                cpu_ms=round(pause.cpu_ms, 1),
                collected=pause.collected,
                at=round(pause.at, 4),
            )
        return flushed

    def log_kept(self, _lag_s: float = 0.0) -> None:
        """Log the pauses kept so far, if any: a loop-lag observer (``_lag_s`` unused)."""
        if self.pauses:
            self.flush()
