"""The worker's gathered acks: which tags one multiple ack may cover, and what is written."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import aiormq
import pytest
from aio_pika.abc import AbstractIncomingMessage

from services.worker.acks import AckNotSent, WorkerAcks, split_acks


@pytest.mark.parametrize(
    ("unsettled", "finished", "expected"),
    [
        ({1, 2, 3}, {1, 2, 3}, (3, [])),
        ({1, 2, 3, 4}, {1, 2}, (2, [])),
        ({1, 2, 3, 4}, {1, 2, 4}, (2, [4])),
        ({1, 2, 3, 4}, {2, 3}, (None, [2, 3])),
        ({1, 2, 3}, {1}, (None, [1])),
        ({1, 2, 3, 5, 6}, {1, 3, 5, 6}, (None, [1, 3, 5, 6])),
        ({4, 7, 9}, {4, 7}, (7, [])),
        (set(), set(), (None, [])),
    ],
)
def test_split_acks_covers_only_tags_below_the_first_unfinished_one(
    unsettled: set[int], finished: set[int], expected: tuple[int | None, list[int]]
) -> None:
    assert split_acks(unsettled, finished) == expected


class FakeChannel:
    def __init__(self) -> None:
        self.is_closed = False
        self.written: list[tuple[str, int, bool]] = []
        self.fail = False


class FakeMessage:
    def __init__(self, channel: FakeChannel, tag: int) -> None:
        self._channel = channel
        self.delivery_tag = tag

    @property
    def channel(self) -> FakeChannel:
        if self._channel.is_closed:
            raise aiormq.exceptions.ChannelInvalidStateError("closed")
        return self._channel

    async def _write(self, what: str, multiple: bool) -> None:
        if self._channel.fail or self._channel.is_closed:
            raise aiormq.exceptions.ChannelInvalidStateError("closed")
        self._channel.written.append((what, self.delivery_tag, multiple))

    async def ack(self, multiple: bool = False) -> None:
        await self._write("ack", multiple)

    async def nack(self, requeue: bool = True) -> None:
        await self._write("nack", False)

    async def reject(self, requeue: bool = False) -> None:
        await self._write("reject", False)


def delivered(acks: WorkerAcks, channel: FakeChannel, tags: range) -> list[Any]:
    messages = [cast(AbstractIncomingMessage, FakeMessage(channel, tag)) for tag in tags]
    for message in messages:
        acks.received(message)
    return messages


async def test_jobs_finished_in_one_turn_are_acked_with_one_multiple_ack() -> None:
    acks, channel = WorkerAcks(), FakeChannel()
    messages = delivered(acks, channel, range(1, 6))

    await asyncio.gather(*(acks.ack(m) for m in messages[:4]))

    assert channel.written == [("ack", 4, True)]
    assert acks.by_channel[channel].unsettled == {5}
    assert (acks.multiple_acks, acks.acks_covered) == (1, 4)


async def test_a_running_job_below_is_never_covered() -> None:
    acks, channel = WorkerAcks(), FakeChannel()
    first, second, third, _fourth = delivered(acks, channel, range(1, 5))

    await asyncio.gather(acks.ack(second), acks.ack(third))
    assert channel.written == [("ack", 2, False), ("ack", 3, False)]

    await acks.ack(first)
    assert channel.written[-1] == ("ack", 1, False)
    assert acks.by_channel[channel].unsettled == {4}


async def test_a_nacked_or_rejected_job_settles_its_own_tag_and_unblocks_later_ones() -> None:
    acks, channel = WorkerAcks(), FakeChannel()
    first, second, third, fourth = delivered(acks, channel, range(1, 5))
    await acks.nack(first, requeue=True)
    await acks.reject(fourth, requeue=False)

    await asyncio.gather(acks.ack(second), acks.ack(third))

    assert channel.written == [("nack", 1, False), ("reject", 4, False), ("ack", 3, True)]
    assert not acks.by_channel[channel].unsettled


async def test_a_redelivery_on_a_new_channel_is_tracked_apart_from_the_lost_one() -> None:
    acks, lost, live = WorkerAcks(), FakeChannel(), FakeChannel()
    old = delivered(acks, lost, range(1, 3))
    lost.is_closed = True
    new = delivered(acks, live, range(1, 3))

    with pytest.raises(aiormq.exceptions.ChannelInvalidStateError):
        await acks.ack(old[0])
    await asyncio.gather(*(acks.ack(m) for m in new))

    assert lost.written == [] and live.written == [("ack", 2, True)]


async def test_a_channel_lost_before_the_flush_fails_every_waiting_ack() -> None:
    acks, channel = WorkerAcks(), FakeChannel()
    messages = delivered(acks, channel, range(1, 4))
    waiting = [asyncio.ensure_future(acks.ack(m)) for m in messages]
    await asyncio.sleep(0)
    channel.is_closed = True

    outcomes = await asyncio.gather(*waiting, return_exceptions=True)

    assert all(isinstance(o, AckNotSent) for o in outcomes)
    assert channel.written == []


async def test_a_failed_multiple_ack_fails_each_job_it_covered() -> None:
    acks, channel = WorkerAcks(), FakeChannel()
    messages = delivered(acks, channel, range(1, 4))
    channel.fail = True

    outcomes = await asyncio.gather(*(acks.ack(m) for m in messages), return_exceptions=True)

    assert all(isinstance(o, aiormq.exceptions.ChannelInvalidStateError) for o in outcomes)


async def test_acks_one_by_one_when_multiple_is_off() -> None:
    acks, channel = WorkerAcks(multiple=False), FakeChannel()
    messages = delivered(acks, channel, range(1, 4))

    await asyncio.gather(*(acks.ack(m) for m in messages))

    assert channel.written == [("ack", 1, False), ("ack", 2, False), ("ack", 3, False)]
    assert not acks.by_channel[channel].unsettled


async def test_acks_asked_for_during_a_flush_wait_for_the_same_flusher() -> None:
    """A lone ack of a high tag must reach the write queue before a later multiple ack that
    would cover it: one flusher sends them in order."""
    acks, channel = WorkerAcks(), FakeChannel()
    messages = delivered(acks, channel, range(1, 8))
    first_turn = [
        asyncio.ensure_future(acks.ack(m)) for m in (messages[0], messages[1], messages[4])
    ]
    await asyncio.sleep(0)
    second_turn = [
        asyncio.ensure_future(acks.ack(m)) for m in (messages[2], messages[3], messages[5])
    ]

    await asyncio.gather(*first_turn, *second_turn)

    assert channel.written == [("ack", 2, True), ("ack", 5, False), ("ack", 6, True)]
    assert acks.by_channel[channel].unsettled == {7}


async def test_a_job_covered_by_a_multiple_ack_is_never_settled_again() -> None:
    """A nack after the ack (a failure in the job's bookkeeping) would be a second settle
    of the tag, which closes the channel."""
    acks, channel = WorkerAcks(), FakeChannel()
    messages = delivered(acks, channel, range(1, 4))
    await asyncio.gather(*(acks.ack(m) for m in messages))

    await acks.nack(messages[0], requeue=True)
    await acks.reject(messages[1], requeue=False)

    assert channel.written == [("ack", 3, True)]
