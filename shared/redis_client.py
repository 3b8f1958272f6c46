"""Redis: one client per process, with retries on connection errors built in."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from shared.retry import with_retries
from shared.settings import Settings


def make_redis(settings: Settings, *, retries: int = 8) -> Redis:
    """A client whose every command retries with backoff while Redis is away.

    The pool blocks (up to ``timeout``) when all its connections are busy, instead of
    failing the request as redis-py's default pool does under a burst of long-polls.
    """
    pool = BlockingConnectionPool.from_url(
        settings.redis_url.get_secret_value(),
        max_connections=settings.redis_max_connections,
        timeout=10,
        decode_responses=True,
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.05), retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, ConnectionResetError],
        health_check_interval=15,
        socket_connect_timeout=3,
        client_name=settings.instance,
    )
    return Redis.from_pool(pool)


async def connect_redis(settings: Settings, *, attempts: int = 30) -> Redis:
    client = make_redis(settings)

    async def ping() -> Redis:
        await client.ping()
        return client

    return await with_retries(
        ping,
        what="redis_connect",
        attempts=attempts,
        retry_on=(OSError, RedisConnectionError, RedisTimeoutError),
    )
