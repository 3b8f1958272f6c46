"""Long-poll support: one pub/sub subscription per gateway wakes every waiting request.

The aggregator publishes a batch id on the batch-done channel the moment the batch's last
job lands; requests waiting on that id return at once, without a sleep loop.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.periodic import raise_if_cancelling

log = structlog.get_logger()


class BatchWaiters:
    def __init__(self, redis: Redis, channel: str) -> None:
        self.redis = redis
        self.channel = channel
        self.events: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        """Listen for finished batches, resubscribing after a Redis outage.

        Not a :func:`~shared.periodic.periodic` step: it blocks on the subscription and only
        loops to reconnect. Any error other than Redis's ends the task, and so the
        gateway's task group, rather than leaving long-polls waiting on a dead listener.
        """
        while True:
            try:
                async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.channel)
                    self.subscribed.set()
                    self.wake_all()
                    async for message in pubsub.listen():
                        self.wake(str(message["data"]))
            except RedisError as exc:
                raise_if_cancelling(exc)
                self.subscribed.clear()
                log.warning("batch_waiters_resubscribing", error=repr(exc))
                self.wake_all()
                await asyncio.sleep(0.5)

    def wake(self, batch_id: str) -> None:
        for event in self.events.pop(batch_id, ()):
            event.set()

    def wake_all(self) -> None:
        """After a gap in the subscription, waiters re-check the state themselves."""
        for batch_id in list(self.events):
            self.wake(batch_id)

    def register(self, batch_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self.events[batch_id].add(event)
        return event

    def unregister(self, batch_id: str, event: asyncio.Event) -> None:
        waiting = self.events.get(batch_id)
        if waiting is not None:
            waiting.discard(event)
            if not waiting:
                del self.events[batch_id]
