"""A cached view of queue depths, so admission control costs no broker round trip per request.

The view is refreshed when someone reads it and finds it older than ``fresh_s`` (a submit's
admission check, ``/instances``, the dashboard), and every ``idle_interval_s`` otherwise, for
the metrics (a scrape takes the view as it is). That reader gets the view as it is and the
next one the fresh answer: nobody waits for the broker. A steady twice-a-second refresh cost
an idle gateway and the broker more CPU than anything else they did between requests.

One refresh runs at a time, as a task of its own that every reader shares; the monitor's
own loop waits for it without cancelling it, and so does :meth:`BacklogMonitor.close`: a
question cut off halfway would leave the kept channel waiting for an answer nobody reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time

import aiormq.abc
import structlog
from aio_pika.abc import AbstractRobustConnection

from shared.messaging import open_asking_channel, passive_depth, queue_depths
from shared.names import Names
from shared.periodic import periodic

EVERY_QUEUE_EVERY = 5
"""Admission control needs the jobs queue's depth at every refresh; the other queues (results,
dead letters, a dozen retry tiers) only feed metrics and the dashboard, asked every 5th."""

CLOSE_TIMEOUT_S = 1.0

log = structlog.get_logger()


class BacklogMonitor:
    def __init__(
        self,
        connection: AbstractRobustConnection,
        names: Names,
        *,
        fresh_s: float = 0.5,
        idle_interval_s: float = 5.0,
    ) -> None:
        self.connection = connection
        self.names = names
        self.fresh_s = fresh_s
        self.idle_interval_s = idle_interval_s
        self.latest: dict[str, int] = {}
        """Every queue's ready messages as last refreshed (-1 where a queue is missing)."""
        self.refreshed_at = -math.inf
        self.refreshes = 0
        self.refreshing: asyncio.Task[None] | None = None
        self.closed = False
        self.asking: aiormq.abc.AbstractChannel | None = None

    @property
    def stale(self) -> bool:
        """The view is older than ``fresh_s``."""
        return time.monotonic() - self.refreshed_at > self.fresh_s

    @property
    def depths(self) -> dict[str, int]:
        """:attr:`latest`, and a refresh started when it is stale."""
        if self.stale:
            self.refresh_soon()
        return self.latest

    @property
    def depth(self) -> int:
        """Jobs waiting to be consumed (ready messages in the jobs queue)."""
        return max(0, self.depths.get(self.names.jobs_queue, 0))

    def refresh_soon(self) -> asyncio.Task[None] | None:
        """The refresh under way, or a new one (none once closed)."""
        if self.refreshing is None or self.refreshing.done():
            if self.closed:
                return None
            self.refreshing = asyncio.get_running_loop().create_task(
                self.refresh_logging_failure(), name="queue_depths_refresh"
            )
        return self.refreshing

    async def refresh_logging_failure(self) -> None:
        try:
            await self.refresh()
        except Exception as exc:  # the broker away: the view stays as it was
            log.warning("queue_depth_failed", error=repr(exc))

    async def refresh(self) -> None:
        """The jobs queue alone between full rounds: 13 passive declares twice a second
        cost the gateway and the broker more CPU, idle, than everything else the gateway
        does between requests. A full round asks on channels of its own, closed after
        (:func:`~shared.messaging.queue_depths` says why); the jobs queue, asked at every
        refresh between them, on one channel kept open."""
        if self.refreshes % EVERY_QUEUE_EVERY == 0 or not self.latest:
            self.latest = await queue_depths(self.connection, self.names)
        else:
            self.latest = {**self.latest, self.names.jobs_queue: await self.jobs_depth()}
        self.refreshes += 1
        self.refreshed_at = time.monotonic()

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
        """Let a refresh under way finish, then close the kept channel, giving a broker that
        does not answer a second for each at most (the connection's own close takes the
        channel along anyway)."""
        self.closed = True
        refreshing, self.refreshing = self.refreshing, None
        if refreshing is not None and not refreshing.done():
            await asyncio.wait([refreshing], timeout=CLOSE_TIMEOUT_S)
            if refreshing.cancel():
                await asyncio.wait([refreshing], timeout=CLOSE_TIMEOUT_S)
        asking, self.asking = self.asking, None
        if asking is not None and not asking.is_closed:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await asking.close()

    async def refresh_if_idle(self) -> None:
        """The slow pace's step: a refresh unless a reader asked for one lately."""
        if self.stale:
            refreshing = self.refresh_soon()
            if refreshing is not None:
                await asyncio.shield(refreshing)

    async def run(self) -> None:
        try:
            await periodic("queue_depth", self.refresh_if_idle, self.idle_interval_s)
        finally:
            await self.close()
