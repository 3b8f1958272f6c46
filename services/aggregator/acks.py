"""Which delivery tags the aggregator has received and not yet settled, per channel.

One ``basic.ack`` with ``multiple=True`` settles every unsettled tag up to its own on its
channel. That is safe for a folded slice only when those tags are exactly the slice's: all
on one live channel, and no other message of that channel (an earlier one still pending,
or an invalid one being rejected) below the slice's highest tag.
"""

from __future__ import annotations

from collections.abc import Sequence
from weakref import WeakKeyDictionary

from aio_pika.abc import AbstractIncomingMessage

from shared.messaging import live_channel


class UnsettledTags:
    """Tags by channel; a closed channel's entry goes with the channel object."""

    def __init__(self) -> None:
        self.by_channel: WeakKeyDictionary[object, set[int]] = WeakKeyDictionary()

    def received(self, message: AbstractIncomingMessage) -> None:
        channel = live_channel(message)
        if channel is not None and message.delivery_tag is not None:
            self.by_channel.setdefault(channel, set()).add(message.delivery_tag)

    def settled(self, messages: Sequence[AbstractIncomingMessage]) -> None:
        if not self.by_channel:
            return
        for message in messages:
            channel = live_channel(message)
            tags = self.by_channel.get(channel) if channel is not None else None
            if tags is not None and message.delivery_tag is not None:
                tags.discard(message.delivery_tag)

    def last_if_one_ack_settles(
        self, messages: Sequence[AbstractIncomingMessage]
    ) -> AbstractIncomingMessage | None:
        """The slice's highest-tagged message when a multiple ack of it settles exactly
        ``messages`` and nothing else; None when each must be settled on its own."""
        if len(messages) < 2:
            return None
        channel = live_channel(messages[0])
        tags = self.by_channel.get(channel) if channel is not None else None
        if tags is None:
            return None
        own: set[int] = set()
        for message in messages:
            if message.delivery_tag is None or live_channel(message) is not channel:
                return None
            own.add(message.delivery_tag)
        if len(own) != len(messages) or not own <= tags:
            return None
        highest = max(own)
        if any(tag <= highest and tag not in own for tag in tags):
            return None
        return next(m for m in messages if m.delivery_tag == highest)
