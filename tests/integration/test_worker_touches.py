"""The ``io`` step's touches, sent many to a pipeline: each job's SET still lands and is
answered on its own, and a failed one fails only its own job."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from services.worker.touches import MAX_PER_PIPELINE, Touches
from shared.redis_client import make_redis
from shared.settings import Settings


async def test_every_touch_lands_with_its_expiry(settings: Settings, redis: Redis) -> None:
    touches = Touches(redis)
    keys = [settings.names.io_touch(f"job.{i}") for i in range(MAX_PER_PIPELINE + 20)]
    await asyncio.gather(*(touches.set(key, 1, px=60_000) for key in keys))
    assert await redis.mget(keys) == ["1"] * len(keys)
    assert 0 < await redis.pttl(keys[-1]) <= 60_000


async def test_a_failed_touch_fails_its_own_job_only(settings: Settings, redis: Redis) -> None:
    touches = Touches(redis)
    good = settings.names.io_touch("job.good")
    outcomes = await asyncio.gather(
        touches.set(good, 1, px=60_000),
        touches.set(settings.names.io_touch("job.bad"), 1, px=-5),
        return_exceptions=True,
    )
    assert outcomes[0] is None
    assert isinstance(outcomes[1], ResponseError)
    assert await redis.get(good) == "1"


async def test_a_lost_server_fails_every_touch_of_the_pipeline(settings: Settings) -> None:
    broken = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    touches = Touches(broken)
    outcomes = await asyncio.gather(
        *(touches.set(f"{settings.namespace}:k{i}", 1, px=1000) for i in range(3)),
        return_exceptions=True,
    )
    await broken.aclose()
    assert all(isinstance(outcome, RedisError) for outcome in outcomes)


async def test_a_connection_lost_between_turns_costs_at_most_that_turn(
    settings: Settings, redis: Redis
) -> None:
    """The turn that finds its connection closed fails (or is retried) as a whole; the next
    turn's touches land on a new connection."""
    client = make_redis(settings)
    try:
        touches = Touches(client)
        keys = [settings.names.io_touch(f"job.{i}") for i in range(3)]
        await touches.set(keys[0], 1, px=60_000)
        assert await redis.client_kill_filter(_id=await client.client_id()) == 1
        outcomes = await asyncio.gather(
            *(touches.set(key, 2, px=60_000) for key in keys[:2]), return_exceptions=True
        )
        assert all(o is None for o in outcomes) or all(isinstance(o, RedisError) for o in outcomes)
        await asyncio.gather(*(touches.set(key, 3, px=60_000) for key in keys))
        assert await redis.mget(keys) == ["3", "3", "3"]
    finally:
        await client.aclose()
