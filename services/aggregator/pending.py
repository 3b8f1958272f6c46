"""Results received but not yet folded, shared by the consumer callback and the folder task."""

from __future__ import annotations

import asyncio

from aio_pika.abc import AbstractIncomingMessage

from shared.jobs import Result


class PendingResults:
    """A buffer the consumer adds to and the folder takes slices from, oldest first.

    It needs no lock: both run on one event loop, and neither ``add`` nor the slicing in
    ``take`` awaits between reading and writing the list, so no other task can run in
    between. The Redis round trip of a fold happens after ``take`` has returned, on a
    slice no longer in the buffer, so a slice is never taken twice and no entry is lost.
    """

    def __init__(self) -> None:
        self.items: list[tuple[AbstractIncomingMessage, Result]] = []
        self.available = asyncio.Event()

    def add(self, message: AbstractIncomingMessage, result: Result) -> None:
        self.items.append((message, result))
        self.available.set()

    async def take(self, limit: int) -> list[tuple[AbstractIncomingMessage, Result]]:
        """Wait until something is pending, then take up to ``limit`` items, oldest first."""
        while True:
            await self.available.wait()
            if self.items:
                taken, self.items = self.items[:limit], self.items[limit:]
                if not self.items:
                    self.available.clear()
                return taken
            self.available.clear()

    def __len__(self) -> int:
        return len(self.items)
