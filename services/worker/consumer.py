"""The worker's job loop: broker -> bounded inbox -> runner tasks -> result -> ack.

At-least-once: a job is acked only after its result is confirmed by the broker, so a
crash at any point leaves the job to be redelivered; the aggregator absorbs the duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractQueue
from redis.exceptions import RedisError

from services.worker.executors import CpuRunner
from services.worker.steps import JobSteps
from shared.jobs import InvalidMessage, Job, Result, decode_job
from shared.logging import context_headers, job_context
from shared.messaging import (
    BROKER_ERRORS,
    PUBLISH_REFUSED,
    from_lost_channel,
    make_message,
    publish_confirmed,
)
from shared.metrics import WorkerMetrics
from shared.names import retry_delay_ms
from shared.periodic import raise_if_cancelling
from shared.settings import Settings

log = structlog.get_logger()

MAX_DEFER_S = 5.0
REFUSED_PAUSE_S = 0.5


def backoff_s(settings: Settings, exponent: int, cap_s: float = float("inf")) -> float:
    """``retry_backoff_s`` doubled ``exponent`` times, capped by ``retry_max_delay_s`` (and
    ``cap_s``), as one of the fixed delays: 20 attempts once meant a 14.6-hour wait."""
    wanted = settings.retry_backoff_s * 2 ** min(exponent, 16)
    capped = min(wanted, cap_s, settings.retry_max_delay_s)
    return retry_delay_ms(capped) / 1000


class JobConsumer:
    def __init__(
        self,
        settings: Settings,
        channel: AbstractChannel,
        jobs_queue: AbstractQueue,
        steps: JobSteps,
        cpu: CpuRunner,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.names = settings.names
        self.channel = channel
        self.jobs_queue = jobs_queue
        self.steps = steps
        self.cpu = cpu
        self.inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue(
            maxsize=settings.effective_prefetch
        )
        self.metrics = metrics or WorkerMetrics(
            settings.instance, mode=settings.worker_mode.value, process_metrics=False
        )
        self.consumer_tag: str | None = None
        self.received = 0
        self.in_flight = 0
        self.completed = 0
        self.failed = 0
        self.retried = 0
        self.dead_lettered = 0
        self.abandoned = 0
        self.deferred = 0
        self.publish_refused = 0

    @property
    def exchange(self) -> AbstractExchange:
        return self.channel.default_exchange

    async def start_consuming(self) -> None:
        self.consumer_tag = await self.jobs_queue.consume(self.inbox.put, no_ack=False)
        log.info(
            "consuming",
            queue=self.names.jobs_queue,
            prefetch=self.settings.effective_prefetch,
            runners=self.settings.runners,
        )

    async def stop_consuming(self) -> None:
        """Ask the broker for no more jobs; unacked ones go back to the queue on close."""
        if self.consumer_tag is not None:
            try:
                await self.jobs_queue.cancel(self.consumer_tag)
            except BROKER_ERRORS as exc:
                log.warning("cancel_consumer_failed", error=repr(exc))
            self.consumer_tag = None

    async def runner(self) -> None:
        while True:
            message = await self.inbox.get()
            self.in_flight += 1
            try:
                if from_lost_channel(message):
                    self.abandoned += 1
                    continue
                await self.handle(message)
            except PUBLISH_REFUSED as exc:
                raise_if_cancelling(exc)
                await self.give_back(message, exc)
            except BROKER_ERRORS as exc:
                raise_if_cancelling(exc)
                self.abandoned += 1
                log.warning("broker_unavailable", error=repr(exc))
            except Exception as exc:
                raise_if_cancelling(exc)
                log.exception("job_handling_failed", error=repr(exc))
                with contextlib.suppress(Exception):
                    await message.nack(requeue=True)
            finally:
                self.in_flight -= 1
                self.inbox.task_done()

    async def give_back(self, message: AbstractIncomingMessage, exc: BaseException) -> None:
        """The broker refused a publish (nack, unroutable) or did not confirm it in time,
        but the channel is open: the job is requeued explicitly, or it would hold a
        prefetch slot until the channel closes. The pause keeps a broker that refuses
        every publish from turning redeliveries into a busy loop."""
        self.publish_refused += 1
        log.warning("publish_refused", error=repr(exc), requeued=True)
        await asyncio.sleep(REFUSED_PAUSE_S)
        try:
            await message.nack(requeue=True)
        except BROKER_ERRORS as nack_exc:
            raise_if_cancelling(nack_exc)
            log.warning("nack_failed", error=repr(nack_exc))

    async def handle(self, message: AbstractIncomingMessage) -> None:
        with job_context(**context_headers(message.headers)):
            try:
                job = decode_job(message.body)
            except InvalidMessage as exc:
                self.dead_lettered += 1
                self.metrics.job_failed("invalid")
                log.warning("message_dead_lettered", reason=str(exc), size=len(message.body))
                await message.reject(requeue=False)
                return
            self.received += 1
            self.metrics.job_received(job.kind.value)
            with job_context(job_id=job.job_id, batch_id=job.batch_id, trace_id=job.trace_id):
                await self.run_job(job, message)

    async def run_job(self, job: Job, message: AbstractIncomingMessage) -> None:
        started = time.perf_counter()
        try:
            value, durations = await self.steps.run(job)
        except Exception as exc:
            raise_if_cancelling(exc)
            await self.on_step_failed(job, message, exc)
            return
        await self.publish_result(job, ok=True, value=value, durations=durations, error=None)
        await message.ack()
        self.completed += 1
        self.metrics.job_completed(job.kind.value, durations)
        log.info(
            "job_completed",
            kind=job.kind.value,
            value=value,
            attempt=job.attempt,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            **{f"{step}_ms": ms for step, ms in durations.items()},
        )

    async def on_step_failed(
        self, job: Job, message: AbstractIncomingMessage, exc: Exception
    ) -> None:
        """Retry with backoff through the retry queue, or give up: dead-letter and count it.

        A Redis outage is the cluster's fault, not the job's: such a job is deferred with
        a backoff capped at ``MAX_DEFER_S`` for as long as the outage lasts, and keeps its
        attempts for failures of its own.
        """
        if isinstance(exc, RedisError):
            job.deferrals += 1
            delay_s = backoff_s(self.settings, job.deferrals, cap_s=MAX_DEFER_S)
            await self.requeue_later(job, message, delay_s)
            self.deferred += 1
            log.warning("job_deferred", error=repr(exc), deferrals=job.deferrals, delay_s=delay_s)
            return
        if job.attempt < self.settings.max_attempts:
            delay_s = backoff_s(self.settings, job.attempt - 1)
            job.attempt += 1
            await self.requeue_later(job, message, delay_s)
            self.retried += 1
            self.metrics.job_retried(job.kind.value)
            log.warning("job_retried", error=repr(exc), attempt=job.attempt - 1, delay_s=delay_s)
            return
        await self.publish_result(job, ok=False, value=0, durations={}, error=repr(exc))
        await message.reject(requeue=False)
        self.failed += 1
        self.metrics.job_failed(job.kind.value)
        log.error("job_failed", error=repr(exc), attempts=job.attempt)

    async def requeue_later(
        self, job: Job, message: AbstractIncomingMessage, delay_s: float
    ) -> None:
        """Through the delay queue of ``delay_s``, whose expired messages go back to the
        jobs queue."""
        await publish_confirmed(
            self.exchange,
            self.names.delay_queue(retry_delay_ms(delay_s)),
            make_message(job.encode(), headers=message.headers, message_id=job.job_id),
            timeout_s=self.settings.publish_timeout_s,
        )
        await message.ack()

    async def publish_result(
        self,
        job: Job,
        *,
        ok: bool,
        value: int,
        durations: dict[str, float],
        error: str | None,
    ) -> None:
        result = Result(
            job_id=job.job_id,
            batch_id=job.batch_id,
            kind=job.kind,
            ok=ok,
            value=value,
            submitted_at=job.submitted_at,
            finished_at=time.time(),
            worker=self.settings.instance,
            attempts=job.attempt,
            error=error,
            durations_ms=durations,
            trace_id=job.trace_id,
        )
        await publish_confirmed(
            self.exchange,
            self.names.results_queue,
            make_message(
                result.encode(),
                headers={"job_id": job.job_id, "batch_id": job.batch_id, "trace_id": job.trace_id},
                message_id=job.job_id,
            ),
            timeout_s=self.settings.publish_timeout_s,
        )

    async def drain(self, deadline_s: float) -> bool:
        """Wait for queued and running jobs to finish; False when the deadline cut it short."""
        try:
            await asyncio.wait_for(self.inbox.join(), timeout=deadline_s)
        except TimeoutError:
            return False
        return True

    def stats(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "in_flight": self.in_flight,
            "queued": self.inbox.qsize(),
            "completed": self.completed,
            "failed": self.failed,
            "retried": self.retried,
            "dead_lettered": self.dead_lettered,
            "pool_busy": self.cpu.busy,
            "pools_replaced": self.cpu.pools_replaced,
            "abandoned": self.abandoned,
            "deferred": self.deferred,
            "publish_refused": self.publish_refused,
        }
