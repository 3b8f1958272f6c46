"""Long-poll support: one pub/sub subscription per gateway wakes every waiting request.

The aggregator publishes a batch id on the batch-done channel the moment the batch's last
job lands; requests waiting on that id return at once, without a sleep loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.periodic import raise_if_cancelling

log = structlog.get_logger()

NUDGE = ""
"""Published on the batch-done channel to wake a listener that absorbed its cancellation:
no batch has an empty id."""
NUDGE_AFTER_S = 0.2
STOP_TIMEOUT_S = 2.0


class BatchWaiters:
    def __init__(self, redis: Redis, channel: str) -> None:
        self.redis = redis
        self.channel = channel
        self.events: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        """Listen until cancelled, the listening in a task of its own.

        redis-py 8 can absorb a cancellation that lands while its pub/sub read blocks, and
        go on reading: the gateway's shutdown then waited for this task for ever (2 to 3
        start-and-stop cycles in with redis-py 8.2.0, 1 in 120 with 8.0.1). So a cancelled
        ``run`` cancels the listener, and if that does not end it within ``NUDGE_AFTER_S``,
        publishes an empty batch id on the channel: the read returns, and the listener,
        still marked as cancelling, stops there (every gateway's listener ignores the id).
        """
        listening = asyncio.get_running_loop().create_task(
            self.listen(), name="batch_waiters_listen"
        )
        try:
            await asyncio.wait([listening])
        except asyncio.CancelledError:
            await self.stop_listening(listening)
            raise
        listening.result()

    async def stop_listening(self, listening: asyncio.Task[None]) -> None:
        listening.cancel()
        done, _ = await asyncio.wait([listening], timeout=NUDGE_AFTER_S)
        if not done:
            with contextlib.suppress(RedisError):
                await self.redis.publish(self.channel, NUDGE)
            done, _ = await asyncio.wait([listening], timeout=STOP_TIMEOUT_S)
        if not done:
            log.warning("batch_waiters_not_stopped", after_s=NUDGE_AFTER_S + STOP_TIMEOUT_S)

    async def listen(self) -> None:
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
                        raise_if_cancelling()
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
