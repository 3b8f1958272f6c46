"""The backlog monitor keeps one channel and asks every queue only every few refreshes."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from aio_pika.abc import AbstractRobustConnection

from services.gateway.backlog import EVERY_QUEUE_EVERY, BacklogMonitor
from shared.names import Names


class FakeChannel:
    def __init__(self, depth: int) -> None:
        self.is_closed = False
        self.depth = depth
        self.asked: list[str] = []

    async def declare_queue(self, name: str, **_: Any) -> SimpleNamespace:
        self.asked.append(name)
        return SimpleNamespace(declaration_result=SimpleNamespace(message_count=self.depth))

    async def close(self) -> None:
        self.is_closed = True


class FakeConnection:
    def __init__(self) -> None:
        self.opened: list[FakeChannel] = []

    async def channel(self, **_: Any) -> FakeChannel:
        self.opened.append(FakeChannel(depth=7))
        return self.opened[-1]


async def test_one_channel_and_the_jobs_queue_alone_between_full_rounds() -> None:
    names = Names("t")
    connection = FakeConnection()
    monitor = BacklogMonitor(cast(AbstractRobustConnection, connection), names)
    for _ in range(EVERY_QUEUE_EVERY + 1):
        await monitor.refresh()
    [channel] = connection.opened
    every = len(names.all_queues)
    assert channel.asked[:every] == list(names.all_queues)
    assert channel.asked[every:] == [names.jobs_queue] * (EVERY_QUEUE_EVERY - 1) + list(
        names.all_queues
    )
    assert not channel.is_closed
    assert monitor.depth == 7
    assert monitor.depths[names.results_queue] == 7


async def test_a_closed_channel_is_replaced() -> None:
    connection = FakeConnection()
    monitor = BacklogMonitor(cast(AbstractRobustConnection, connection), Names("t"))
    await monitor.refresh()
    connection.opened[0].is_closed = True
    await monitor.refresh()
    assert len(connection.opened) == 2
