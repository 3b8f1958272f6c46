"""The one loop every background figure uses: do a step, survive its failure, sleep, repeat.

Queue depths, heartbeats, the count of running batches and the dashboard's figures are
all refreshed this way. A step that fails for a reason the loop may outlive (the broker
or Redis away) is logged and tried again next interval; anything else ends the loop, and
so the service's task group, so a broken background task is noticed rather than silent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import NoReturn

import structlog

log = structlog.get_logger()


def raise_if_cancelling(cause: BaseException | None = None) -> None:
    """Raise the cancellation a client library swallowed or turned into its own error.

    aiormq and redis-py can answer a cancellation that lands mid-call with a channel or
    connection error, or absorb it; a periodic loop that carried on would never stop. Loops
    call this in their error path and before they sleep.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling() > 0:
        raise asyncio.CancelledError from cause


async def periodic(
    name: str,
    step: Callable[[], Awaitable[object]],
    interval_s: float | Callable[[], float],
    *,
    survives: tuple[type[BaseException], ...] = (Exception,),
) -> NoReturn:
    """Run ``step`` every ``interval_s`` (a number, or a function asked before each sleep)
    until cancelled.

    ``survives`` names the errors that are the outside world's fault; each is logged as
    ``{name}_failed`` and the next interval tries again.
    """
    while True:
        try:
            await step()
        except survives as exc:
            raise_if_cancelling(exc)
            log.warning(f"{name}_failed", error=repr(exc))
        raise_if_cancelling()
        await asyncio.sleep(interval_s() if callable(interval_s) else interval_s)
