"""The heartbeat: each instance's identity and live figures, kept fresh in Redis."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared import codec
from shared.interpreter import gil_enabled, python_build
from shared.names import Names
from shared.periodic import periodic

log = structlog.get_logger()


FORGET_AFTER_BEATS = 30
MIN_FORGET_AFTER_S = 60.0

PRUNE_SCRIPT = """
local cutoff = tonumber(ARGV[1])
local raw = redis.call('HGETALL', KEYS[1])
local removed = 0
for i = 1, #raw, 2 do
  local decoded, beat = pcall(cjson.decode, raw[i + 1])
  local seen = decoded and type(beat) == 'table' and tonumber(beat['last_seen']) or nil
  if not seen or seen < cutoff then
    redis.call('HDEL', KEYS[1], raw[i])
    removed = removed + 1
  end
end
return removed
"""


class Heartbeat:
    """Publishes this instance's identity and live figures to Redis every ``interval_s``.

    ``cluster status``, the comparison and the dashboard read these; an entry whose
    ``last_seen`` is old belongs to an instance that died without saying goodbye. Such an
    entry stays visible (as stale) for ``forget_after_s`` (by default 30 beats, at least a
    minute), then any live instance removes it, in one script that reads ``last_seen``
    where it deletes, so a beat written meanwhile is never lost. The hash itself expires
    ``forget_after_s`` after the last beat of any instance, so a namespace nobody runs any
    more leaves nothing behind.
    """

    def __init__(
        self,
        redis: Redis,
        names: Names,
        *,
        service: str,
        instance: str,
        interval_s: float,
        stats: Callable[[], dict[str, Any]],
        forget_after_s: float | None = None,
        **static: Any,
    ) -> None:
        self.redis = redis
        self.names = names
        self.interval_s = interval_s
        self.stats = stats
        self.forget_after_s = forget_after_s or max(
            MIN_FORGET_AFTER_S, FORGET_AFTER_BEATS * interval_s
        )
        self.prune = redis.register_script(PRUNE_SCRIPT)
        self.pruned_at = 0.0
        self.identity = {
            "service": service,
            "instance": instance,
            "pid": os.getpid(),
            "started_at": time.time(),
            "python": python_build(),
            "gil": gil_enabled(),
            **static,
        }

    def payload(self) -> bytes:
        return codec.dumps({**self.identity, "last_seen": time.time(), **self.stats()})

    async def beat(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.names.instances, self.identity["instance"], self.payload())
            pipe.expire(self.names.instances, math.ceil(self.forget_after_s))
            await pipe.execute()
        if time.monotonic() - self.pruned_at >= self.forget_after_s / 4:
            self.pruned_at = time.monotonic()
            await self.prune(keys=[self.names.instances], args=[time.time() - self.forget_after_s])

    async def run(self) -> None:
        await periodic("heartbeat", self.beat, self.interval_s, survives=(RedisError,))

    async def remove(self) -> None:
        try:
            await self.redis.hdel(self.names.instances, self.identity["instance"])
        except RedisError as exc:
            log.warning("heartbeat_remove_failed", error=repr(exc))


async def read_instances(redis: Redis, names: Names) -> list[dict[str, Any]]:
    raw = await redis.hgetall(names.instances)
    return sorted(
        (codec.loads(value) for value in raw.values()),
        key=lambda entry: (entry.get("service", ""), entry.get("instance", "")),
    )
