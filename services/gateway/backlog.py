"""A cached view of queue depths, so admission control costs no broker round trip per request."""

from __future__ import annotations

from aio_pika.abc import AbstractRobustConnection

from shared.messaging import open_asking_channel, passive_depth, queue_depths
from shared.names import Names
from shared.periodic import periodic

EVERY_QUEUE_EVERY = 5
"""Admission control needs the jobs queue's depth at every refresh; the other queues (results,
dead letters, a dozen retry tiers) only feed metrics and the dashboard, asked every 5th."""


class BacklogMonitor:
    def __init__(
        self, connection: AbstractRobustConnection, names: Names, *, interval_s: float = 0.5
    ) -> None:
        self.connection = connection
        self.names = names
        self.interval_s = interval_s
        self.depths: dict[str, int] = {}
        self.refreshes = 0

    @property
    def depth(self) -> int:
        """Jobs waiting to be consumed (ready messages in the jobs queue)."""
        return max(0, self.depths.get(self.names.jobs_queue, 0))

    async def refresh(self) -> None:
        """The jobs queue alone between full rounds: 13 passive declares twice a second
        cost the gateway and the broker more CPU, idle, than everything else the gateway
        does between requests. Each refresh asks on channels of its own, closed after
        (:func:`~shared.messaging.queue_depths` says why none is kept)."""
        if self.refreshes % EVERY_QUEUE_EVERY == 0 or not self.depths:
            self.depths = await queue_depths(self.connection, self.names)
        else:
            self.depths = {**self.depths, self.names.jobs_queue: await self.jobs_depth()}
        self.refreshes += 1

    async def jobs_depth(self) -> int:
        """Ready messages in the jobs queue, or -1 where it does not exist."""
        channel = await open_asking_channel(self.connection)
        try:
            return await passive_depth(channel, self.names.jobs_queue)
        finally:
            if not channel.is_closed:
                await channel.close()

    async def run(self) -> None:
        await periodic("queue_depth", self.refresh, self.interval_s)
