"""A cached view of queue depths, so admission control costs no broker round trip per request."""

from __future__ import annotations

from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection

from shared.messaging import queue_depths
from shared.names import Names
from shared.periodic import periodic


class BacklogMonitor:
    def __init__(
        self, connection: AbstractRobustConnection, names: Names, *, interval_s: float = 0.5
    ) -> None:
        self.connection = connection
        self.names = names
        self.interval_s = interval_s
        self.depths: dict[str, int] = {}
        self.channel: AbstractRobustChannel | None = None

    @property
    def depth(self) -> int:
        """Jobs waiting to be consumed (ready messages in the jobs queue)."""
        return max(0, self.depths.get(self.names.jobs_queue, 0))

    async def refresh(self) -> None:
        """One channel for every refresh, opened again only once closed: a channel opened
        and closed twice a second cost the gateway and the broker more CPU, idle, than
        everything else the gateway does between requests."""
        if self.channel is None or self.channel.is_closed:
            self.channel = await self.connection.channel(publisher_confirms=False)
        self.depths = await queue_depths(self.connection, self.names, channel=self.channel)

    async def run(self) -> None:
        await periodic("queue_depth", self.refresh, self.interval_s)
