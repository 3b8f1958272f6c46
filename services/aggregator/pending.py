"""Results received but not yet folded, shared by the consumer callback and the folder task."""

from __future__ import annotations

import asyncio

from aio_pika.abc import AbstractIncomingMessage

from shared.jobs import Result


class PendingResults:
    """A buffer guarded by an ``asyncio.Lock``.

    The consumer adds while the folder takes a slice across an ``await`` (the Redis
    round trip); the lock keeps a slice from being taken twice or an entry from being lost.
    """

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.items: list[tuple[AbstractIncomingMessage, Result]] = []
        self.available = asyncio.Event()

    async def add(self, message: AbstractIncomingMessage, result: Result) -> None:
        async with self.lock:
            self.items.append((message, result))
            self.available.set()

    async def take(self, limit: int) -> list[tuple[AbstractIncomingMessage, Result]]:
        """Wait until something is pending, then take up to ``limit`` items, oldest first."""
        while True:
            await self.available.wait()
            async with self.lock:
                if self.items:
                    taken, self.items = self.items[:limit], self.items[limit:]
                    if not self.items:
                        self.available.clear()
                    return taken
                self.available.clear()

    def __len__(self) -> int:
        return len(self.items)
