"""uvicorn's server, ticking once a second instead of ten times.

uvicorn's main loop sleeps 0.1 s between ticks, only to refresh the ``Date`` header once a
second and to notice ``should_exit``. On a small VM each wake-up of an idle process costs
it a couple of hundred microseconds of CPU, so those ten ticks were the largest part of an
idle gateway's CPU after the loop-lag monitor. Here the loop sleeps a whole second between
ticks (every tick refreshes the header), and setting ``should_exit`` (uvicorn's signal
handler, or a failed background task) wakes it at once, so stopping is as prompt as before.
"""

from __future__ import annotations

import asyncio
import contextlib

import uvicorn

TICK_S = 1.0
TICKS_PER_S = 10
"""uvicorn counts ticks of 0.1 s and refreshes the header when the count is a multiple of 10."""


class GatewayServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        self._exit_asked = False
        self._woken: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        super().__init__(config)

    @property
    def should_exit(self) -> bool:
        return self._exit_asked

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        """Also wakes the main loop: set from a signal handler or a task, on the loop's
        own thread, but possibly in the middle of a callback, hence the thread-safe call."""
        self._exit_asked = value
        if value and self._woken is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                self._loop.call_soon_threadsafe(self._woken.set)

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._woken = asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + TICKS_PER_S) % 864_000
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK_S):
                    await self._woken.wait()
            should_exit = await self.on_tick(counter)
