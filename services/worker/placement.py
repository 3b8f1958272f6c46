"""Where and how the process pool's children run: one CPU each, and the batch policy.

Both are set once, by the child itself, when it starts (a ``ProcessPoolExecutor``
initializer), so no job pays for them. Linux only; elsewhere they are no-ops.
"""

from __future__ import annotations

import os
from multiprocessing.sharedctypes import Synchronized


def place_child(next_index: Synchronized[int] | None, cpus: tuple[int, ...], batch: bool) -> None:
    """Pin this child to the next CPU of ``cpus`` in turn (when ``next_index`` is given),
    and switch it to ``SCHED_BATCH`` (when ``batch``): a CPU-bound child that never wakes
    anyone up, which the scheduler may then run in longer slices."""
    if next_index is not None and cpus and hasattr(os, "sched_setaffinity"):
        with next_index.get_lock():
            index = next_index.value
            next_index.value += 1
        os.sched_setaffinity(0, {cpus[index % len(cpus)]})
    if batch and hasattr(os, "SCHED_BATCH"):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
