"""The aggregator's loop: results -> pending buffer -> one atomic fold per slice -> ack.

Results are acked only after their fold has been applied in Redis; a crash before the ack
redelivers them, and the fold script absorbs the duplicates.
"""

from __future__ import annotations

import contextlib
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from redis.exceptions import RedisError

from services.aggregator.acks import UnsettledTags
from services.aggregator.fold import FoldOutcome, ResultFolder
from services.aggregator.pending import PendingResults
from shared.jobs import InvalidMessage, Result, decode_result
from shared.logging import context_headers, job_context
from shared.messaging import BROKER_ERRORS, Subscription
from shared.metrics import AggregatorMetrics
from shared.periodic import raise_if_cancelling
from shared.settings import Settings

log = structlog.get_logger()


class ResultConsumer:
    def __init__(
        self,
        settings: Settings,
        results_queue: AbstractQueue,
        folder: ResultFolder,
        metrics: AggregatorMetrics | None = None,
    ):
        self.settings = settings
        self.metrics = metrics or AggregatorMetrics(settings.instance, process_metrics=False)
        self.results_queue = results_queue
        self.folder = folder
        self.pending = PendingResults()
        self.subscription = Subscription(results_queue, self.on_message)
        self.unsettled = UnsettledTags()
        self.folded = 0
        self.duplicates = 0
        self.orphans = 0
        self.batches_done = 0
        self.dead_lettered = 0
        self.acks_lost = 0
        self.slices_acked_at_once = 0

    async def start_consuming(self) -> None:
        await self.subscription.start()

    async def stop_consuming(self) -> None:
        await self.subscription.stop()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self.unsettled.received(message)
        try:
            result = decode_result(message.body)
        except InvalidMessage as exc:
            self.dead_lettered += 1
            with job_context(**context_headers(message.headers)):
                log.warning("result_dead_lettered", reason=str(exc))
            try:
                await message.reject(requeue=False)
            finally:
                self.unsettled.settled([message])
            return
        self.pending.add(message, result)

    async def folder_loop(self) -> None:
        while True:
            taken = await self.pending.take(self.settings.aggregator_batch)
            await self.fold_and_ack(taken)

    async def fold_and_ack(self, taken: list[tuple[AbstractIncomingMessage, Any]]) -> None:
        try:
            outcome = await self.folder.fold([result for _, result in taken])
        except RedisError as exc:
            raise_if_cancelling(exc)
            log.error("fold_failed", error=repr(exc), results=len(taken))
            for message, _ in taken:
                with contextlib.suppress(Exception):
                    await message.nack(requeue=True)
            self.unsettled.settled([message for message, _ in taken])
            return
        refused = set(outcome.invalid)
        lost = await self.settle(taken, refused)
        if lost:
            log.warning("acks_lost", error=repr(lost[0]), lost=len(lost), results=len(taken))
        self.acks_lost += len(lost)
        self.count(outcome, refused)

    async def settle(
        self, taken: list[tuple[AbstractIncomingMessage, Any]], refused: set[int]
    ) -> list[BaseException]:
        """Ack the folded results and reject the refused ones; the broker errors of what
        could not be settled (those are redelivered, and the fold absorbs them)."""
        messages = [message for message, _ in taken]
        try:
            last = (
                None
                if refused or not self.settings.aggregator_ack_multiple
                else self.unsettled.last_if_one_ack_settles(messages)
            )
            if last is not None:
                try:
                    await last.ack(multiple=True)
                except BROKER_ERRORS as exc:
                    raise_if_cancelling(exc)
                    return [exc] * len(taken)
                self.slices_acked_at_once += 1
                for _, result in taken:
                    self.log_folded(result)
                return []
            return await self.settle_each(taken, refused)
        finally:
            self.unsettled.settled(messages)

    def log_folded(self, result: Result) -> None:
        """The ids go on the line itself: binding and unbinding them as context for one
        line would cost more than the line."""
        ids = {"job_id": result.job_id, "batch_id": result.batch_id, "trace_id": result.trace_id}
        log.info(
            "result_folded",
            ok=result.ok,
            worker=result.worker,
            **{k: v for k, v in ids.items() if v},
        )

    async def settle_each(
        self, taken: list[tuple[AbstractIncomingMessage, Any]], refused: set[int]
    ) -> list[BaseException]:
        lost: list[BaseException] = []
        for index, (message, result) in enumerate(taken):
            # Each ack or reject on its own: a slice that spans a reconnect holds messages
            # of the closed channel (whose acks fail) and of the live one (whose acks must
            # not be skipped, or they hold prefetch slots until that channel closes too).
            try:
                if index in refused:
                    self.dead_lettered += 1
                    await message.reject(requeue=False)
                    continue
                await message.ack()
            except BROKER_ERRORS as exc:
                # Folded but not acked: the broker redelivers it, and the fold absorbs it.
                raise_if_cancelling(exc)
                lost.append(exc)
                continue
            self.log_folded(result)
        return lost

    def count(self, outcome: FoldOutcome, refused: set[int]) -> None:
        self.folded += outcome.folded
        self.duplicates += outcome.duplicates
        self.orphans += outcome.orphans
        self.metrics.fold_outcome(
            folded=outcome.folded,
            duplicates=outcome.duplicates,
            orphans=outcome.orphans,
            done=len(outcome.done),
        )
        if outcome.duplicates:
            log.info("duplicates_absorbed", count=outcome.duplicates)
        if outcome.orphans:
            log.warning("orphan_results", count=outcome.orphans)
        if refused:
            log.warning("results_refused_by_fold", count=len(refused))
        for batch_id in outcome.done:
            self.batches_done += 1
            with job_context(batch_id=batch_id):
                log.info("batch_completed")

    async def drain(self) -> None:
        """Fold what is already pending, so nothing received is left unacked at exit."""
        while len(self.pending):
            await self.fold_and_ack(await self.pending.take(self.settings.aggregator_batch))

    def stats(self) -> dict[str, Any]:
        return {
            "pending": len(self.pending),
            "folded": self.folded,
            "duplicates": self.duplicates,
            "orphans": self.orphans,
            "batches_done": self.batches_done,
            "dead_lettered": self.dead_lettered,
            "acks_lost": self.acks_lost,
            "slices_acked_at_once": self.slices_acked_at_once,
        }
