"""The aggregator's acks, on real channels: one failed ack never skips the others."""

from __future__ import annotations

import asyncio

from aio_pika.abc import AbstractRobustConnection
from redis.asyncio import Redis

from services.aggregator.consumer import ResultConsumer
from services.aggregator.fold import ResultFolder
from shared.batches import read_batch
from shared.jobs import decode_result
from shared.messaging import declare_topology, make_message, queue_depths
from shared.settings import Settings
from tests.integration.test_fold import new_batch, result


async def test_a_slice_spanning_a_reconnect_acks_every_live_message(
    settings: Settings, amqp: AbstractRobustConnection, redis: Redis
) -> None:
    channel = await amqp.channel()
    queues = await declare_topology(channel, settings.names)
    batch_id = "a" * 32
    await new_batch(redis, settings, batch_id, expected=3)
    for index in range(3):
        await channel.default_exchange.publish(
            make_message(result(batch_id, index).encode()),
            routing_key=settings.names.results_queue,
        )
    lost_channel = await amqp.channel()
    lost_queue = await lost_channel.get_queue(settings.names.results_queue)
    first = await lost_queue.get(timeout=5)
    live_channel = await amqp.channel()
    live_queue = await live_channel.get_queue(settings.names.results_queue)
    live = [await live_queue.get(timeout=5) for _ in range(2)]
    await lost_channel.close()  # the first message's channel is gone: it is redelivered

    consumer = ResultConsumer(
        settings, queues["results"], ResultFolder(redis, settings.names, ttl_s=600)
    )
    taken = [(m, decode_result(m.body)) for m in (first, *live)]
    await consumer.fold_and_ack(taken)

    status = await read_batch(redis, settings.names, batch_id)
    assert status is not None and status.completed == 3
    await live_channel.close()
    await asyncio.sleep(0.5)
    # Only the message of the closed channel is back; the live channel's two were acked.
    assert (await queue_depths(amqp, settings.names))[settings.names.results_queue] == 1
    assert consumer.acks_lost == 1
