"""Retries written once: a logged warning per attempt, exponential backoff, re-raise when spent."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

T = TypeVar("T")

log = structlog.get_logger()


async def with_retries(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    attempts: int = 10,
    first_delay_s: float = 0.2,
    max_delay_s: float = 5.0,
    retry_on: tuple[type[BaseException], ...] = (OSError, ConnectionError, asyncio.TimeoutError),
) -> T:
    delay = first_delay_s
    for attempt in range(1, attempts + 1):
        try:
            return await operation()
        except retry_on as exc:
            if attempt == attempts:
                log.error("retries_exhausted", what=what, attempts=attempts, error=repr(exc))
                raise
            log.warning(
                "retrying", what=what, attempt=attempt, delay_s=round(delay, 2), error=repr(exc)
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay_s)
    raise AssertionError("unreachable")
