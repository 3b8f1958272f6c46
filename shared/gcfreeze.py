"""Keeping the start-up heap out of the garbage collector's full collections.

A service holds a couple of hundred thousand objects once started (FastAPI, pydantic,
aio-pika, redis-py, structlog and their modules, classes and functions), and they live as
long as the process. Every full (generation 2) collection walks all of them, 20 to 50 ms of
CPU on a slow 2-core VM, during which the event loop stands still and every job in the
service waits: a job caught behind one is in the latency's tail. ``gc.freeze`` moves them to
a permanent generation that no collection walks; the collector still runs and still frees
every cycle made after start-up. The price: a frozen object that later ends up in garbage
cycles (the first broker connection's objects, after a reconnect replaced them) is never
freed, once per such object; ``COORD_GC_FREEZE=false`` turns it off.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect once (garbage is not frozen), then freeze what is left; how many objects."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
