"""One multiple ack per folded slice, on real channels: only when it settles exactly the slice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from redis.asyncio import Redis

from services.aggregator.consumer import ResultConsumer
from services.aggregator.fold import ResultFolder
from shared.jobs import decode_result
from shared.messaging import declare_topology, make_message, queue_depths
from shared.settings import Settings
from tests.integration.conftest import InProcessCluster
from tests.integration.test_fold import new_batch, result

BATCH_ID = "b" * 32


async def received(
    consumer: ResultConsumer, queue: AbstractQueue, count: int
) -> list[AbstractIncomingMessage]:
    """``count`` results taken from the queue and handed to the consumer's callback."""
    messages = [await queue.get(timeout=5) for _ in range(count)]
    for message in messages:
        await consumer.on_message(message)
    return messages


async def setup(
    settings: Settings, amqp: AbstractRobustConnection, redis: Redis, count: int
) -> tuple[ResultConsumer, AbstractQueue]:
    channel = await amqp.channel()
    queues = await declare_topology(channel, settings.names)
    await new_batch(redis, settings, BATCH_ID, expected=count)
    for index in range(count):
        await channel.default_exchange.publish(
            make_message(result(BATCH_ID, index).encode()),
            routing_key=settings.names.results_queue,
        )
    consumer = ResultConsumer(
        settings, queues["results"], ResultFolder(redis, settings.names, ttl_s=600)
    )
    return consumer, queues["results"]


async def results_left(amqp: AbstractRobustConnection, settings: Settings) -> int:
    await asyncio.sleep(0.5)
    return (await queue_depths(amqp, settings.names))[settings.names.results_queue]


async def test_a_whole_slice_is_acked_with_one_multiple_ack(
    settings: Settings, amqp: AbstractRobustConnection, redis: Redis
) -> None:
    consumer, _ = await setup(settings, amqp, redis, 4)
    channel = await amqp.channel()
    queue = await channel.get_queue(settings.names.results_queue)
    await received(consumer, queue, 4)
    taken = await consumer.pending.take(10)
    last = consumer.unsettled.last_if_one_ack_settles([m for m, _ in taken])

    await consumer.fold_and_ack(taken)

    assert last is taken[-1][0]
    assert consumer.folded == 4 and consumer.acks_lost == 0
    assert not any(consumer.unsettled.by_channel.values())
    await channel.close()
    assert await results_left(amqp, settings) == 0


async def test_an_earlier_unsettled_message_is_not_acked_with_a_later_slice(
    settings: Settings, amqp: AbstractRobustConnection, redis: Redis
) -> None:
    consumer, _ = await setup(settings, amqp, redis, 4)
    channel = await amqp.channel()
    queue = await channel.get_queue(settings.names.results_queue)
    first, *later = await received(consumer, queue, 4)
    consumer.pending.items = consumer.pending.items[1:]  # the first still waits elsewhere
    taken = [(m, decode_result(m.body)) for m in later]

    assert consumer.unsettled.last_if_one_ack_settles(later) is None
    await consumer.fold_and_ack(taken)

    assert consumer.folded == 3
    await channel.close()
    # The first was neither folded nor acked: the broker has it back.
    assert await results_left(amqp, settings) == 1
    assert first.delivery_tag is not None and consumer.acks_lost == 0


async def test_a_slice_with_a_refused_result_is_settled_message_by_message(
    settings: Settings, amqp: AbstractRobustConnection, redis: Redis
) -> None:
    consumer, _ = await setup(settings, amqp, redis, 3)
    await publish_refused(settings, amqp)
    channel = await amqp.channel()
    queue = await channel.get_queue(settings.names.results_queue)
    await received(consumer, queue, 4)
    taken = await consumer.pending.take(10)

    await consumer.fold_and_ack(taken)

    assert consumer.folded == 3
    assert consumer.dead_lettered == 1
    await channel.close()
    assert await results_left(amqp, settings) == 0


async def publish_refused(settings: Settings, amqp: AbstractRobustConnection) -> None:
    """A well-formed message the fold refuses: a value out of range."""
    channel = await amqp.channel()
    refused = result(BATCH_ID, 99, value=2**63)
    await channel.default_exchange.publish(
        make_message(refused.encode()), routing_key=settings.names.results_queue
    )
    await channel.close()


async def test_results_consumed_in_order_are_acked_a_slice_at_a_time(
    in_process: Callable[..., InProcessCluster],
    settings: Settings,
    amqp: AbstractRobustConnection,
    redis: Redis,
) -> None:
    """Published before the aggregator starts, so they arrive in a burst, as under load."""
    await setup(settings, amqp, redis, 200)
    async with in_process(aggregator_batch=50) as cluster:

        async def all_folded() -> bool:
            return cluster.aggregator.folded == 200

        await cluster.run_until(all_folded)
        assert cluster.aggregator.slices_acked_at_once >= 1
        assert cluster.aggregator.acks_lost == 0
    assert await results_left(cluster.amqp, settings) == 0
