"""Running a coroutine, or a service's ``main``, under the fastest available event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

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
    run_fast(main(settings))
