from collections.abc import AsyncIterator

import pytest
from aio_pika.abc import AbstractRobustConnection
from redis.asyncio import Redis

from shared.messaging import connect_amqp
from shared.redis_client import connect_redis
from shared.settings import Settings


@pytest.fixture
async def amqp(settings: Settings) -> AsyncIterator[AbstractRobustConnection]:
    connection = await connect_amqp(settings, attempts=3)
    async with connection:
        yield connection


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = await connect_redis(settings, attempts=3)
    yield client
    await client.aclose()
