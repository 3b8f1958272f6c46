"""The worker's job loop: broker -> bounded inbox -> runner tasks -> result -> ack.

At-least-once: a job is acked only after its result is confirmed by the broker, so a
crash at any point leaves the job to be redelivered; the aggregator absorbs the duplicate.
What happens to a job that fails is decided by :func:`services.worker.decide.decide`; this
module only carries the decision out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractQueue

from services.worker.acks import WorkerAcks
from services.worker.decide import DeadLetter, Decision, Defer, Requeue, Retry, Stage, decide
from services.worker.executors import CpuRunner
from services.worker.steps import JobSteps
from shared.jobs import InvalidMessage, Job, Result, decode_job
from shared.logging import context_headers, job_context
from shared.messaging import (
    BROKER_ERRORS,
    PUBLISH_REFUSED,
    Outgoing,
    Subscription,
    from_lost_channel,
    make_message,
    publish_confirmed,
)
from shared.metrics import WorkerMetrics
from shared.periodic import raise_if_cancelling
from shared.settings import Settings

log = structlog.get_logger()


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
        self.acks = WorkerAcks(multiple=settings.worker_ack_multiple)
        self.subscription = Subscription(jobs_queue, self.on_message)
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
        await self.subscription.start(
            prefetch=self.settings.effective_prefetch, runners=self.settings.runners
        )

    async def stop_consuming(self) -> None:
        await self.subscription.stop()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self.acks.received(message)
        await self.inbox.put(message)

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
                decision = decide(None, exc, self.settings, Stage.PUBLISH)
                await self.carry_out(decision, None, message, exc)
            except BROKER_ERRORS as exc:
                raise_if_cancelling(exc)
                self.abandoned += 1
                log.warning("broker_unavailable", error=repr(exc))
            except Exception as exc:
                raise_if_cancelling(exc)
                log.exception("job_handling_failed", error=repr(exc))
                with contextlib.suppress(Exception):
                    await self.acks.nack(message, requeue=True)
            finally:
                self.in_flight -= 1
                self.inbox.task_done()

    async def handle(self, message: AbstractIncomingMessage) -> None:
        """Decode and run one job, its ids bound to every line logged meanwhile: the
        headers' ids for a message that does not decode, else the job's own."""
        try:
            job = decode_job(message.body)
        except InvalidMessage as exc:
            with job_context(**context_headers(message.headers)):
                await self.carry_out(decide(None, exc, self.settings), None, message, exc)
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
            await self.carry_out(decide(job, exc, self.settings), job, message, exc)
            return
        await self.publish_result(job, ok=True, value=value, durations=durations, error=None)
        await self.acks.ack(message)
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

    async def carry_out(
        self,
        decision: Decision,
        job: Job | None,
        message: AbstractIncomingMessage,
        exc: BaseException,
    ) -> None:
        """Publish, ack, nack or reject as ``decision`` says, then count and log it."""
        match decision:
            case Defer(job=later, queue=queue, delay_s=delay_s):
                await self.publish_later(later, queue, message)
                self.deferred += 1
                log.warning(
                    "job_deferred", error=repr(exc), deferrals=later.deferrals, delay_s=delay_s
                )
            case Retry(job=later, queue=queue, delay_s=delay_s):
                await self.publish_later(later, queue, message)
                self.retried += 1
                self.metrics.job_retried(later.kind.value)
                log.warning(
                    "job_retried", error=repr(exc), attempt=later.attempt - 1, delay_s=delay_s
                )
            case Requeue(pause_s=pause_s):
                # The pause keeps a broker that refuses every publish from turning
                # redeliveries into a busy loop.
                self.publish_refused += 1
                log.warning("publish_refused", error=repr(exc), requeued=True)
                await asyncio.sleep(pause_s)
                try:
                    await self.acks.nack(message, requeue=True)
                except BROKER_ERRORS as nack_exc:
                    raise_if_cancelling(nack_exc)
                    log.warning("nack_failed", error=repr(nack_exc))
            case DeadLetter(reason=reason, report=True) if job is not None:
                await self.publish_result(job, ok=False, value=0, durations={}, error=reason)
                await self.acks.reject(message, requeue=False)
                self.failed += 1
                self.metrics.job_failed(job.kind.value)
                log.error("job_failed", error=reason, attempts=job.attempt)
            case DeadLetter(reason=reason):
                await self.acks.reject(message, requeue=False)
                self.dead_lettered += 1
                self.metrics.job_failed("invalid")
                log.warning("message_dead_lettered", reason=reason, size=len(message.body))

    async def publish_later(self, job: Job, queue: str, message: AbstractIncomingMessage) -> None:
        """Into a delay queue, whose expired messages go back to the jobs queue; the
        original is acked only once that publish is confirmed."""
        await publish_confirmed(
            self.exchange,
            queue,
            make_message(job.encode(), headers=message.headers, message_id=job.job_id),
            timeout_s=self.settings.publish_timeout_s,
        )
        await self.acks.ack(message)

    async def publish_result(
        self,
        job: Job,
        *,
        ok: bool,
        value: int,
        durations: dict[str, float],
        error: str | None,
    ) -> None:
        """Publish the job's result and wait for its confirm. The ids travel in the body
        only: an AMQP headers table costs the broker CPU on every message
        (``python -m loadtests.bench.headers``), and the aggregator reads the body anyway."""
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
            Outgoing.json(result.encode(), message_id=job.job_id),
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
            "multiple_acks": self.acks.multiple_acks,
            "acks_covered": self.acks.acks_covered,
        }
