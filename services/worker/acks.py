"""The worker's acks, gathered per loop turn: one multiple ack where it is safe.

Runners finish jobs out of order, and aiormq writes every ack as a socket write of its
own. A job is handed here only once its result is confirmed; the acks of one loop turn are
then sent together. One ``basic.ack`` with ``multiple=True`` settles every unsettled tag
up to its own on its channel, so it is sent only up to the highest tag below which every
tag still unsettled on that channel is finished: never over a job that is queued, running,
or being nacked or rejected. The finished tags above it are acked one by one.

Every delivery is recorded when it arrives and forgotten when it is settled, by an ack
here or by a nack or reject through :meth:`WorkerAcks.nack` and :meth:`WorkerAcks.reject`.
A closed channel's tags are void: its entry goes with the channel object, and the broker
redelivers what it held.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass, field
from weakref import WeakKeyDictionary

from aio_pika.abc import AbstractIncomingMessage

from shared.messaging import BROKER_ERRORS, live_channel


class AckNotSent(ConnectionError):
    """The job's ack was not written: its channel closed first, or the flush was cut
    short. The broker redelivers the job."""


def split_acks(
    unsettled: Collection[int], finished: Collection[int]
) -> tuple[int | None, list[int]]:
    """The tag one multiple ack may go up to (None when it would cover fewer than two
    finished tags), and the finished tags left to ack one by one.

    ``finished`` must be a subset of ``unsettled``: a multiple ack up to tag ``t`` is safe
    only when every unsettled tag ``<= t`` is finished.
    """
    waiting = [tag for tag in unsettled if tag not in finished]
    below = min(waiting) if waiting else None
    covered = [tag for tag in finished if below is None or tag < below]
    if len(covered) < 2:
        return None, sorted(finished)
    return max(covered), sorted(tag for tag in finished if below is not None and tag > below)


@dataclass
class ChannelTags:
    unsettled: set[int] = field(default_factory=set)
    finished: dict[int, tuple[AbstractIncomingMessage, asyncio.Future[None]]] = field(
        default_factory=dict
    )


class WorkerAcks:
    """Deliveries by channel, and the acks waiting for the next flush."""

    def __init__(self, *, multiple: bool = True) -> None:
        self.multiple = multiple
        self.by_channel: WeakKeyDictionary[object, ChannelTags] = WeakKeyDictionary()
        self.flushing: asyncio.Task[None] | None = None
        self.multiple_acks = 0
        self.acks_covered = 0

    def received(self, message: AbstractIncomingMessage) -> None:
        channel = live_channel(message)
        if channel is not None and message.delivery_tag is not None:
            self.by_channel.setdefault(channel, ChannelTags()).unsettled.add(message.delivery_tag)

    def forget(self, message: AbstractIncomingMessage) -> None:
        channel = live_channel(message)
        tags = self.by_channel.get(channel) if channel is not None else None
        if tags is not None and message.delivery_tag is not None:
            tags.unsettled.discard(message.delivery_tag)

    async def ack(self, message: AbstractIncomingMessage) -> None:
        """Returns once the job's ack is written, alone or within a multiple ack; raises a
        broker error when it could not be."""
        channel = live_channel(message)
        tags = self.by_channel.get(channel) if channel is not None else None
        tag = message.delivery_tag
        if tags is not None:
            if tag in tags.finished:
                raise RuntimeError(f"delivery tag {tag} is already waiting for its ack")
            if tag not in tags.unsettled:
                return
        if not self.multiple or tags is None or tag is None:
            try:
                await message.ack()
            finally:
                self.forget(message)
            return
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        tags.finished[tag] = (message, written)
        if self.flushing is None:
            self.flushing = asyncio.create_task(self.flush())
        await written

    def settled_here(self, message: AbstractIncomingMessage) -> bool:
        """True once the message's tag was settled through here, e.g. covered by a multiple
        ack (aio-pika marks only the message a multiple ack is sent on as processed): a
        second settle of a tag would close the channel."""
        channel = live_channel(message)
        tags = self.by_channel.get(channel) if channel is not None else None
        tag = message.delivery_tag
        return tags is not None and tag not in tags.unsettled and tag not in tags.finished

    async def nack(self, message: AbstractIncomingMessage, *, requeue: bool) -> None:
        if self.settled_here(message):
            return
        try:
            await message.nack(requeue=requeue)
        finally:
            self.forget(message)

    async def reject(self, message: AbstractIncomingMessage, *, requeue: bool) -> None:
        if self.settled_here(message):
            return
        try:
            await message.reject(requeue=requeue)
        finally:
            self.forget(message)

    async def flush(self) -> None:
        """One flusher at a time, from the loop turn after the first ack was asked for
        until none waits: its acks reach the connection's write queue in the order it sends
        them, so a multiple ack never overtakes a lone ack of a tag below it."""
        try:
            while True:
                waiting = [(c, t) for c, t in list(self.by_channel.items()) if t.finished]
                if not waiting:
                    return
                for channel, tags in waiting:
                    finished, tags.finished = tags.finished, {}
                    await self.flush_channel(channel, tags, finished)
        finally:
            self.flushing = None

    async def flush_channel(
        self,
        channel: object,
        tags: ChannelTags,
        finished: dict[int, tuple[AbstractIncomingMessage, asyncio.Future[None]]],
    ) -> None:
        try:
            if getattr(channel, "is_closed", True):
                return
            last, alone = split_acks(tags.unsettled, finished.keys())
            tags.unsettled.difference_update(finished)
            if last is not None:
                covered = [(m, f) for t, (m, f) in finished.items() if t <= last]
                await self.write(finished[last][0], covered, multiple=True)
                self.multiple_acks += 1
                self.acks_covered += len(covered)
            for tag in alone:
                await self.write(finished[tag][0], [finished[tag]], multiple=False)
        finally:
            for _, written in finished.values():
                if not written.done():
                    written.set_exception(AckNotSent())

    @staticmethod
    async def write(
        message: AbstractIncomingMessage,
        settles: list[tuple[AbstractIncomingMessage, asyncio.Future[None]]],
        *,
        multiple: bool,
    ) -> None:
        try:
            await message.ack(multiple=multiple)
        except BROKER_ERRORS as exc:
            for _, written in settles:
                if not written.done():
                    written.set_exception(exc)
            return
        for _, written in settles:
            if not written.done():
                written.set_result(None)
