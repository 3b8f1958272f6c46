"""services.probe against the real Redis: a fresh heartbeat passes, a stale one fails."""

from __future__ import annotations

import asyncio
import socket
import time

import orjson
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from services.probe import ProbeFailed, Service, probe_heartbeat
from shared.heartbeat import Heartbeat, WorkerBeat
from shared.settings import Settings


async def write_beat(redis: Redis, settings: Settings, service: str, age_s: float) -> None:
    instance = f"{socket.gethostname()}-4242"
    payload = {"service": service, "instance": instance, "last_seen": time.time() - age_s}
    await redis.hset(settings.names.instances, instance, orjson.dumps(payload))


async def test_a_fresh_heartbeat_passes(redis: Redis, settings: Settings) -> None:
    await write_beat(redis, settings, "worker", age_s=1)
    message = probe_heartbeat(settings, Service.WORKER, max_age_s=30, timeout_s=3)
    assert message.startswith("worker heartbeat")


async def test_a_stale_or_missing_heartbeat_fails(redis: Redis, settings: Settings) -> None:
    with pytest.raises(ProbeFailed, match="no aggregator heartbeat"):
        probe_heartbeat(settings, Service.AGGREGATOR, max_age_s=30, timeout_s=3)
    await write_beat(redis, settings, "aggregator", age_s=120)
    with pytest.raises(ProbeFailed, match="120s old"):
        probe_heartbeat(settings, Service.AGGREGATOR, max_age_s=30, timeout_s=3)


def test_an_unreachable_redis_fails(settings: Settings) -> None:
    broken = settings.model_copy(update={"redis_url": SecretStr("redis://127.0.0.1:1/0")})
    with pytest.raises(ProbeFailed, match="redis unreachable"):
        probe_heartbeat(broken, Service.WORKER, max_age_s=30, timeout_s=1)


async def test_heartbeats_of_dead_instances_are_forgotten(redis: Redis, settings: Settings) -> None:
    """An instance that died without saying goodbye stays visible (stale) for a while, then
    goes; the hash expires once no instance beats any more."""
    await redis.hset(
        settings.names.instances,
        mapping={
            "dead-old": orjson.dumps({"instance": "dead-old", "last_seen": time.time() - 7200}),
            "dead-recent": orjson.dumps({"instance": "dead-recent", "last_seen": time.time() - 5}),
        },
    )
    heartbeat = Heartbeat(
        redis, settings.names, model=WorkerBeat, instance="alive", interval_s=0.05, stats=dict
    )
    task = asyncio.create_task(heartbeat.run())
    await asyncio.sleep(0.5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert sorted(await redis.hkeys(settings.names.instances)) == ["alive", "dead-recent"]
    assert 0 < await redis.ttl(settings.names.instances) <= 3600
