"""The worker's gathered acks on a real channel: a multiple ack settles exactly the finished
jobs below the first unfinished one, and the rest go back to the queue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from redis.asyncio import Redis

from services.worker.acks import WorkerAcks
from shared.jobs import JobKind
from shared.messaging import declare_topology, make_message, queue_depths
from shared.settings import Settings
from tests.integration.conftest import InProcessCluster
from tests.integration.test_consumers import batch_done, is_done, new_batch


async def jobs_left(amqp: AbstractRobustConnection, settings: Settings) -> int:
    await asyncio.sleep(0.5)
    return (await queue_depths(amqp, settings.names))[settings.names.jobs_queue]


async def queued(amqp: AbstractRobustConnection, settings: Settings, bodies: list[bytes]) -> None:
    """The bodies waiting in the jobs queue before anything consumes it."""
    publisher = await amqp.channel()
    await declare_topology(publisher, settings.names)
    for body in bodies:
        await publisher.default_exchange.publish(
            make_message(body), routing_key=settings.names.jobs_queue
        )
    await publisher.close()


async def delivered(
    amqp: AbstractRobustConnection, settings: Settings, acks: WorkerAcks, count: int
) -> tuple[object, list[AbstractIncomingMessage]]:
    await queued(amqp, settings, [str(index).encode() for index in range(count)])
    channel = await amqp.channel()
    queue = await channel.get_queue(settings.names.jobs_queue)
    messages = [await queue.get(timeout=5, no_ack=False) for _ in range(count)]
    for message in messages:
        acks.received(message)
    return channel, messages


async def test_only_finished_jobs_are_settled_and_the_rest_are_redelivered(
    settings: Settings, amqp: AbstractRobustConnection
) -> None:
    acks = WorkerAcks()
    channel, messages = await delivered(amqp, settings, acks, 6)
    # 1, 2 and 4 finish; 3 is nacked back; 5 and 6 are still running when the channel goes.
    await asyncio.gather(acks.ack(messages[0]), acks.ack(messages[1]), acks.ack(messages[3]))
    await acks.nack(messages[2], requeue=True)

    assert acks.multiple_acks == 1 and acks.acks_covered == 2
    await channel.close()  # type: ignore[attr-defined]
    # 3 (nacked) and 5, 6 (never acked) are back; the three acked are gone.
    assert await jobs_left(amqp, settings) == 3


async def test_a_multiple_ack_after_a_nack_settles_the_rest(
    settings: Settings, amqp: AbstractRobustConnection
) -> None:
    acks = WorkerAcks()
    channel, messages = await delivered(amqp, settings, acks, 5)
    await acks.reject(messages[0], requeue=True)
    await asyncio.gather(*(acks.ack(m) for m in messages[1:]))

    assert acks.multiple_acks == 1 and acks.acks_covered == 4
    await channel.close()  # type: ignore[attr-defined]
    assert await jobs_left(amqp, settings) == 1


async def test_a_worker_under_a_burst_acks_many_jobs_at_once_and_each_once(
    in_process: Callable[..., InProcessCluster],
    settings: Settings,
    redis: Redis,
    amqp: AbstractRobustConnection,
) -> None:
    """Queued before the worker starts, so they arrive in a burst, as under load. Published
    one confirmed message at a time to a running worker, they would each be run and acked
    before the next arrived. A double ack would close the channel, and a missed one would
    leave jobs in the queue."""
    batch_id, jobs = await new_batch(redis, settings, JobKind.IO, [2] * 300, io_ms=0)
    await queued(amqp, settings, [job.encode() for job in jobs])
    async with in_process(runners=16) as cluster:
        await cluster.run_until(is_done(redis, settings, batch_id))
        assert not cluster.worker_channel.is_closed
    status = await batch_done(redis, settings, batch_id)
    assert status.completed == 300
    assert cluster.worker.completed == 300 and cluster.worker.abandoned == 0
    assert cluster.worker.acks.multiple_acks >= 1
    depths = await cluster.depths()
    assert depths[settings.names.jobs_queue] == 0
