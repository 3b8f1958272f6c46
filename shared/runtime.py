"""Running a coroutine, or a service's ``main``, under the fastest available event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import structlog

from shared.settings import Settings

T = TypeVar("T")


def run_fast(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop where it is installed (it is a dependency off Windows)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def run_service(main: Callable[[Settings], Coroutine[Any, Any, None]], settings: Settings) -> None:
    """Run a service's ``main``; a background task that failed ends the process with 1.

    The failure itself is already logged with its traceback (``background_task_failed``).
    """
    try:
        run_fast(main(settings))
    except ExceptionGroup as group:
        structlog.get_logger().error("service_failed", errors=len(group.exceptions))
        raise SystemExit(1) from None
