"""The aggregator dead-letters a result the fold script refused and acks the rest."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.aggregator.consumer import ResultConsumer
from services.aggregator.fold import FoldOutcome
from shared.jobs import JobKind, Result
from shared.settings import load_settings


class Message:
    def __init__(self) -> None:
        self.outcome: str | None = None

    async def ack(self) -> None:
        self.outcome = "ack"

    async def reject(self, requeue: bool = False) -> None:
        self.outcome = f"reject requeue={requeue}"


class RefusingFolder:
    async def fold(self, results: Sequence[Result]) -> FoldOutcome:
        return FoldOutcome(folded=len(results) - 1, invalid=[1])


async def test_a_refused_result_is_dead_lettered_and_the_others_acked() -> None:
    consumer = ResultConsumer(load_settings(), results_queue=None, folder=RefusingFolder())  # type: ignore[arg-type]
    taken: list[tuple[Any, Result]] = [
        (Message(), Result(f"b.{i}", "b", JobKind.IO, True, 1, 1.0, 2.0, "w")) for i in range(3)
    ]
    await consumer.fold_and_ack(taken)
    assert [message.outcome for message, _ in taken] == ["ack", "reject requeue=False", "ack"]
    assert consumer.stats()["dead_lettered"] == 1
