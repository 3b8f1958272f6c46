"""Removing one namespace's queues, exchange and Redis keys, and nothing else."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import aio_pika
from aio_pika.exceptions import ChannelClosed

from shared.redis_client import make_redis
from shared.settings import Settings


async def purge_namespace(settings: Settings, *, extra_queues: Iterable[str] = ()) -> int:
    """Delete every queue, exchange and key of ``settings.namespace``; returns keys deleted.

    Only names built by :class:`shared.names.Names` for this namespace are touched, so
    other clusters and other users of the same servers are unaffected.
    """
    names = settings.names
    connection = await aio_pika.connect(settings.amqp_url.get_secret_value())
    async with connection:
        for queue in (*names.all_queues, *extra_queues):
            with contextlib.suppress(ChannelClosed):
                async with connection.channel() as channel:
                    await channel.queue_delete(queue)
        with contextlib.suppress(ChannelClosed):
            async with connection.channel() as channel:
                await channel.exchange_delete(names.dead_exchange)
    redis = make_redis(settings)
    deleted = 0
    try:
        batch: list[str] = []
        async for key in redis.scan_iter(match=f"{names.redis_prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await redis.delete(*batch)
                batch.clear()
        if batch:
            deleted += await redis.delete(*batch)
    finally:
        await redis.aclose()
    return deleted
