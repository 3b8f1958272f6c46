"""The backlog monitor asks every queue only every few refreshes, on channels it closes, and
the jobs queue alone between them, on one channel it keeps."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aio_pika.abc import AbstractRobustConnection

import shared.messaging
from services.gateway import backlog
from services.gateway.backlog import EVERY_QUEUE_EVERY, BacklogMonitor
from shared.names import Names


class FakeChannel:
    def __init__(self, depth: int) -> None:
        self.is_closed = False
        self.depth = depth
        self.asked: list[str] = []

    async def queue_declare(self, name: str, **_: Any) -> SimpleNamespace:
        self.asked.append(name)
        return SimpleNamespace(message_count=self.depth)

    async def close(self) -> None:
        self.is_closed = True


async def test_the_jobs_queue_alone_between_full_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[FakeChannel] = []

    async def open_channel(_: object) -> FakeChannel:
        opened.append(FakeChannel(depth=7))
        return opened[-1]

    monkeypatch.setattr(backlog, "open_asking_channel", open_channel)
    monkeypatch.setattr(shared.messaging, "open_asking_channel", open_channel)
    names = Names("t")
    monitor = BacklogMonitor(cast(AbstractRobustConnection, object()), names)
    for _ in range(EVERY_QUEUE_EVERY + 1):
        await monitor.refresh()
    first_round, kept, last_round = opened
    assert kept.asked == [names.jobs_queue] * (EVERY_QUEUE_EVERY - 1)
    assert first_round.asked == last_round.asked == list(names.all_queues)
    assert first_round.is_closed and last_round.is_closed and not kept.is_closed
    assert monitor.depth == 7
    assert monitor.depths[names.results_queue] == 7


class HeldChannel(FakeChannel):
    """Answers only once ``answer`` is set: a refresh under way."""

    def __init__(self, depth: int, answer: asyncio.Event) -> None:
        super().__init__(depth)
        self.answer = answer

    async def queue_declare(self, name: str, **kwargs: Any) -> SimpleNamespace:
        await self.answer.wait()
        return await super().queue_declare(name, **kwargs)


def held_monitor(monkeypatch: pytest.MonkeyPatch, answer: asyncio.Event) -> BacklogMonitor:
    async def open_channel(_: object) -> FakeChannel:
        return HeldChannel(3, answer)

    monkeypatch.setattr(backlog, "open_asking_channel", open_channel)
    monkeypatch.setattr(shared.messaging, "open_asking_channel", open_channel)
    return BacklogMonitor(cast(AbstractRobustConnection, object()), Names("t"), fresh_s=0.5)


async def test_a_stale_view_starts_one_refresh_that_no_reader_waits_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer = asyncio.Event()
    monitor = held_monitor(monkeypatch, answer)
    assert monitor.depth == 0, "the view as it is, at once"
    first = monitor.refreshing
    assert first is not None and not first.done()
    assert monitor.depths == {} and monitor.refreshing is first, "readers share one refresh"
    answer.set()
    await first
    assert monitor.depth == 3 and monitor.refreshing is first, "a fresh view asks nothing"
    assert monitor.latest[Names("t").results_queue] == 3

    monitor.refreshed_at -= 1
    assert monitor.depth == 3 and monitor.refreshing is not first
    await asyncio.wait_for(monitor.refreshing, timeout=1)


async def test_closing_lets_a_refresh_under_way_finish(monkeypatch: pytest.MonkeyPatch) -> None:
    answer = asyncio.Event()
    monitor = held_monitor(monkeypatch, answer)
    assert monitor.depths == {}
    refreshing = monitor.refreshing
    assert refreshing is not None
    closing = asyncio.create_task(monitor.close())
    await asyncio.sleep(0.05)
    assert not closing.done() and not refreshing.done()
    answer.set()
    await asyncio.wait_for(closing, timeout=1)
    assert refreshing.done() and not refreshing.cancelled()
    assert monitor.latest and monitor.depths and monitor.refresh_soon() is None
