import asyncio
import uuid

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from shared.messaging import (
    declare_topology,
    make_message,
    publish_many_confirmed,
    queue_depths,
)
from shared.names import Names, retry_delay_ms
from shared.settings import Settings


async def test_many_confirmed_publishes_all_arrive(
    settings: Settings, amqp: AbstractRobustConnection
) -> None:
    channel = await amqp.channel()
    queues = await declare_topology(channel, settings.names)
    messages = (
        (settings.names.jobs_queue, make_message(str(i).encode(), message_id=str(i)))
        for i in range(500)
    )
    confirmed = await publish_many_confirmed(
        channel.default_exchange, messages, window=64, timeout_s=30
    )
    assert confirmed == 500
    await asyncio.sleep(0.2)
    assert (await queue_depths(amqp, settings.names))[settings.names.jobs_queue] == 500

    received: list[int] = []
    async with queues["jobs"].iterator() as stream:
        async for message in stream:
            await message.ack()
            received.append(int(message.body))
            if len(received) == 500:
                break
    assert sorted(received) == list(range(500))


async def test_messages_are_persistent_and_queues_durable(
    settings: Settings, amqp: AbstractRobustConnection
) -> None:
    channel = await amqp.channel()
    queues = await declare_topology(channel, settings.names)
    assert all(queue.durable for queue in queues.values())
    assert make_message(b"x").delivery_mode == aio_pika.DeliveryMode.PERSISTENT


async def test_rejected_message_is_dead_lettered(
    settings: Settings, amqp: AbstractRobustConnection
) -> None:
    channel = await amqp.channel()
    queues = await declare_topology(channel, settings.names)
    await channel.default_exchange.publish(
        make_message(b"poison"), routing_key=settings.names.jobs_queue
    )
    message: AbstractIncomingMessage | None = await queues["jobs"].get(timeout=5)
    assert message is not None
    await message.reject(requeue=False)
    dead = await queues["dead"].get(timeout=5, fail=False)
    for _ in range(20):
        if dead is not None:
            break
        await asyncio.sleep(0.1)
        dead = await queues["dead"].get(fail=False)
    assert dead is not None and dead.body == b"poison"
    await dead.ack()


async def test_a_long_delay_does_not_hold_up_a_short_one(
    settings: Settings, amqp: AbstractRobustConnection
) -> None:
    """One queue of per-message expirations only expires its head: a 60 s retry ahead of a
    0.25 s one would hold it for 60 s. One queue per delay keeps every queue in TTL order."""
    names = settings.names
    channel = await amqp.channel()
    queues = await declare_topology(channel, names)
    for body, delay_s in ((b"in a minute", 60.0), (b"soon", 0.25)):
        await channel.default_exchange.publish(
            make_message(body), routing_key=names.delay_queue(retry_delay_ms(delay_s))
        )
    assert await queues["jobs"].get(fail=False) is None
    await asyncio.sleep(1.0)
    message = await queues["jobs"].get(timeout=5)
    assert message.body == b"soon"
    await message.ack()
    depths = await queue_depths(amqp, names)
    assert depths[names.retry_queue] == 1 and names.delay_queue(60_000) not in depths


async def test_depth_of_missing_queue_is_reported_not_created(
    settings: Settings, amqp: AbstractRobustConnection
) -> None:
    depths = await queue_depths(amqp, settings.names)
    assert set(depths.values()) == {-1}


async def test_asking_for_missing_queues_leaves_no_channel_open(
    amqp: AbstractRobustConnection,
) -> None:
    """Each missing queue closes a channel; none of them may come back (a robust channel
    would reopen itself, and a gateway asking twice a second would pile them up)."""
    names = Names(f"absent{uuid.uuid4().hex[:8]}")
    before = len(amqp.transport.connection.channels)
    for _ in range(3):
        depths = await queue_depths(amqp, names)
        assert set(depths.values()) == {-1}
    await asyncio.sleep(1.5)
    assert len(amqp.transport.connection.channels) == before
