"""Running a service's ``main`` under the fastest available event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from shared.settings import Settings


def run_service(main: Callable[[Settings], Coroutine[Any, Any, None]], settings: Settings) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        asyncio.run(main(settings))
    else:
        uvloop.run(main(settings))
