"""The backlog monitor asks every queue only every few refreshes, each on channels it closes."""

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


async def test_the_jobs_queue_alone_between_full_rounds() -> None:
    names = Names("t")
    connection = FakeConnection()
    monitor = BacklogMonitor(cast(AbstractRobustConnection, connection), names)
    for _ in range(EVERY_QUEUE_EVERY + 1):
        await monitor.refresh()
    asked = [[*channel.asked] for channel in connection.opened]
    assert asked == [
        list(names.all_queues),
        *[[names.jobs_queue]] * (EVERY_QUEUE_EVERY - 1),
        list(names.all_queues),
    ]
    assert all(channel.is_closed for channel in connection.opened)
    assert monitor.depth == 7
    assert monitor.depths[names.results_queue] == 7
