"""A cached view of queue depths, so admission control costs no broker round trip per request."""

from __future__ import annotations

import asyncio
import contextlib

import aiormq.abc
from aio_pika.abc import AbstractRobustConnection

from shared.messaging import open_asking_channel, passive_depth, queue_depths
from shared.names import Names
from shared.periodic import periodic

EVERY_QUEUE_EVERY = 5
"""Admission control needs the jobs queue's depth at every refresh; the other queues (results,
dead letters, a dozen retry tiers) only feed metrics and the dashboard, asked every 5th."""

CLOSE_TIMEOUT_S = 1.0


class BacklogMonitor:
    def __init__(
        self, connection: AbstractRobustConnection, names: Names, *, interval_s: float = 0.5
    ) -> None:
        self.connection = connection
        self.names = names
        self.interval_s = interval_s
        self.depths: dict[str, int] = {}
        self.refreshes = 0
        self.asking: aiormq.abc.AbstractChannel | None = None

    @property
    def depth(self) -> int:
        """Jobs waiting to be consumed (ready messages in the jobs queue)."""
        return max(0, self.depths.get(self.names.jobs_queue, 0))

    async def refresh(self) -> None:
        """The jobs queue alone between full rounds: 13 passive declares twice a second
        cost the gateway and the broker more CPU, idle, than everything else the gateway
        does between requests. A full round asks on channels of its own, closed after
        (:func:`~shared.messaging.queue_depths` says why); the jobs queue, asked at every
        refresh between them, on one channel kept open."""
        if self.refreshes % EVERY_QUEUE_EVERY == 0 or not self.depths:
            self.depths = await queue_depths(self.connection, self.names)
        else:
            self.depths = {**self.depths, self.names.jobs_queue: await self.jobs_depth()}
        self.refreshes += 1

    async def jobs_depth(self) -> int:
        """Ready messages in the jobs queue, or -1 where it does not exist.

        Asked on a bare aiormq channel kept from one refresh to the next: opening and
        closing one twice a second cost the gateway and the broker more than the question
        itself. The broker closes it where the queue is missing, and a lost connection
        takes it along; the next refresh then opens another. Being aiormq's own, it never
        reopens itself (:func:`~shared.messaging.open_asking_channel`)."""
        if self.asking is None or self.asking.is_closed:
            self.asking = await open_asking_channel(self.connection)
        return await passive_depth(self.asking, self.names.jobs_queue)

    async def close(self) -> None:
        """Close the kept channel, giving a broker that does not answer a second at most
        (the connection's own close takes the channel along anyway)."""
        asking, self.asking = self.asking, None
        if asking is not None and not asking.is_closed:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await asking.close()

    async def run(self) -> None:
        try:
            await periodic("queue_depth", self.refresh, self.interval_s)
        finally:
            await self.close()
