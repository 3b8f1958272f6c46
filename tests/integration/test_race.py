import asyncio

from redis.asyncio import Redis

from loadtests.compare.race import cross_process_race
from shared.settings import Settings


async def test_across_processes_get_then_set_loses_and_incr_does_not(
    settings: Settings, redis: Redis
) -> None:
    race = await asyncio.to_thread(
        cross_process_race,
        settings.redis_url.get_secret_value(),
        settings.names,
        processes=2,
        tasks=4,
        rounds=100,
    )
    assert race.unsafe.expected == race.safe.expected == 800
    assert race.unsafe.lost > 0
    assert race.safe.lost == 0
    assert await redis.keys(f"{settings.names.redis_prefix}race:*") == []
