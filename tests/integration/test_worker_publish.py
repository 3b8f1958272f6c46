"""A worker whose result publish is refused by the broker, on a real channel.

Unroutable (no results queue: the broker returns it) and nacked (a full queue that rejects
publishes) must both leave the job unacked and requeued at once, never acked as if the
result had landed, and never holding a prefetch slot on the still-open channel.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aio_pika.abc import AbstractRobustConnection
from redis.asyncio import Redis

from services.worker.consumer import JobConsumer
from services.worker.executors import CpuRunner
from services.worker.steps import JobSteps
from shared.jobs import Job, JobKind
from shared.messaging import make_message, open_publishing_channel, queue_depths
from shared.settings import Settings, WorkerMode

FULL_QUEUE: dict[str, Any] = {"x-max-length": 0, "x-overflow": "reject-publish"}


@pytest.mark.parametrize("results_queue", ["missing", "full"])
async def test_a_refused_result_requeues_the_job(
    settings: Settings, amqp: AbstractRobustConnection, redis: Redis, results_queue: str
) -> None:
    names = settings.names
    channel = await open_publishing_channel(amqp)
    jobs = await channel.declare_queue(names.jobs_queue, durable=True)
    if results_queue == "full":
        await channel.declare_queue(names.results_queue, durable=True, arguments=FULL_QUEUE)
    job = Job("b.0", "b" * 32, JobKind.IO, n=10_000, io_ms=1, submitted_at=time.time())
    await channel.default_exchange.publish(
        make_message(job.encode(), message_id=job.job_id), routing_key=names.jobs_queue
    )
    cpu = CpuRunner(WorkerMode.BLOCKING, 1)
    consumer = JobConsumer(settings, channel, jobs, JobSteps(redis, names, cpu), cpu)
    runner = asyncio.create_task(consumer.runner())
    try:
        await consumer.start_consuming()
        for _ in range(200):
            if consumer.received >= 1:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        await consumer.stop_consuming()
        await asyncio.wait_for(consumer.inbox.join(), timeout=10)
        depth = -1
        for _ in range(40):
            depth = (await queue_depths(amqp, names))[names.jobs_queue]
            if depth == 1:
                break
            await asyncio.sleep(0.1)
        assert depth == 1, "the job was neither requeued nor left ready in the queue"
        assert consumer.completed == 0
        assert consumer.stats()["publish_refused"] >= 1
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        cpu.close()
        await channel.close()
