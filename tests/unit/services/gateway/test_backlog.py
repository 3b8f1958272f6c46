"""The backlog monitor asks every queue only every few refreshes, on channels it closes, and
the jobs queue alone between them, on one channel it keeps."""

from __future__ import annotations

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
