"""The heartbeat: each instance's identity and live figures, one typed model per service.

Every instance writes its :class:`GatewayBeat`, :class:`WorkerBeat` or
:class:`AggregatorBeat` into the namespace's ``instances`` hash every ``heartbeat_s``;
``cluster status``, the probes, the comparison, the soak and the dashboard read them back
through :func:`parse_beat`, the one place that knows their shape.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Literal

import structlog
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.interpreter import gil_enabled, python_build
from shared.names import Names
from shared.periodic import periodic

log = structlog.get_logger()


class LoopLag(BaseModel):
    """A :meth:`~shared.looplag.LoopLagMonitor.snapshot`, in ms; ``histogram`` (bucket
    index -> samples since start) only in the full one, not in the recent one."""

    p50: float | None = None
    p99: float | None = None
    max: float | None = None
    max_since_start: float = 0.0
    histogram: dict[str, int] | None = None


class Beat(BaseModel):
    """What every instance reports: who and where it is, and how late its loop wakes."""

    service: str
    instance: str
    pid: int = 0
    started_at: float = 0.0
    last_seen: float = 0.0
    python: str = ""
    gil: bool | None = None
    metrics_port: int = 0
    loop_lag_ms: LoopLag = Field(default_factory=LoopLag)
    loop_lag_recent_ms: LoopLag = Field(default_factory=LoopLag)

    @property
    def done(self) -> int:
        """The service's count of finished work: jobs run, results folded, jobs accepted."""
        return 0


class GatewayBeat(Beat):
    service: Literal["gateway"] = "gateway"
    port: int = 0
    accepted_batches: int = 0
    accepted_jobs: int = 0
    waiting_requests: int = 0
    batches_in_flight: int = 0

    @property
    def done(self) -> int:
        return self.accepted_jobs


class WorkerBeat(Beat):
    service: Literal["worker"] = "worker"
    mode: str = ""
    pool_size: int = 0
    runners: int = 0
    received: int = 0
    in_flight: int = 0
    queued: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    pool_busy: int = 0
    pools_replaced: int = 0
    abandoned: int = 0
    deferred: int = 0
    publish_refused: int = 0

    @property
    def done(self) -> int:
        return self.completed


class AggregatorBeat(Beat):
    service: Literal["aggregator"] = "aggregator"
    pending: int = 0
    folded: int = 0
    duplicates: int = 0
    orphans: int = 0
    batches_done: int = 0
    dead_lettered: int = 0
    acks_lost: int = 0

    @property
    def done(self) -> int:
        return self.folded


AnyBeat = Annotated[GatewayBeat | WorkerBeat | AggregatorBeat, Field(discriminator="service")]
_BEAT: TypeAdapter[GatewayBeat | WorkerBeat | AggregatorBeat] = TypeAdapter(AnyBeat)


def parse_beat(raw: str | bytes | Mapping[str, Any]) -> GatewayBeat | WorkerBeat | AggregatorBeat:
    """One heartbeat, from Redis (JSON) or from ``/instances`` (a decoded object).

    Raises :class:`pydantic.ValidationError` for an entry of no known service.
    """
    if isinstance(raw, str | bytes):
        return _BEAT.validate_json(raw)
    return _BEAT.validate_python(raw)


def parse_beats(
    raws: Iterable[str | bytes | Mapping[str, Any]],
) -> list[GatewayBeat | WorkerBeat | AggregatorBeat]:
    """The heartbeats that parse, by service and instance; a malformed entry (written by
    another version) is left out with a warning rather than failing every reader."""
    beats = []
    for raw in raws:
        try:
            beats.append(parse_beat(raw))
        except ValidationError as exc:
            log.warning("heartbeat_unreadable", errors=exc.error_count())
    return sorted(beats, key=lambda beat: (beat.service, beat.instance))


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

    An entry whose ``last_seen`` is old belongs to an instance that died without saying
    goodbye. Such an entry stays visible (as stale) for ``forget_after_s`` (by default 30
    beats, at least a minute), then any live instance removes it, in one script that reads
    ``last_seen`` where it deletes, so a beat written meanwhile is never lost. The hash
    itself expires ``forget_after_s`` after the last beat of any instance, so a namespace
    nobody runs any more leaves nothing behind.
    """

    def __init__(
        self,
        redis: Redis,
        names: Names,
        *,
        model: type[Beat],
        instance: str,
        interval_s: float,
        stats: Callable[[], Mapping[str, Any]],
        forget_after_s: float | None = None,
        **static: Any,
    ) -> None:
        self.redis = redis
        self.names = names
        self.model = model
        self.instance = instance
        self.interval_s = interval_s
        self.stats = stats
        self.forget_after_s = forget_after_s or max(
            MIN_FORGET_AFTER_S, FORGET_AFTER_BEATS * interval_s
        )
        self.prune = redis.register_script(PRUNE_SCRIPT)
        self.pruned_at = 0.0
        self.identity = {
            "instance": instance,
            "pid": os.getpid(),
            "started_at": time.time(),
            "python": python_build(),
            "gil": gil_enabled(),
            **static,
        }

    def current(self) -> Beat:
        return self.model.model_validate(
            {**self.identity, "last_seen": time.time(), **self.stats()}
        )

    def payload(self) -> bytes:
        return self.current().model_dump_json().encode()

    async def beat(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.names.instances, self.instance, self.payload())
            pipe.expire(self.names.instances, math.ceil(self.forget_after_s))
            await pipe.execute()
        if time.monotonic() - self.pruned_at >= self.forget_after_s / 4:
            self.pruned_at = time.monotonic()
            await self.prune(keys=[self.names.instances], args=[time.time() - self.forget_after_s])

    async def run(self) -> None:
        await periodic("heartbeat", self.beat, self.interval_s, survives=(RedisError,))

    async def remove(self) -> None:
        try:
            await self.redis.hdel(self.names.instances, self.instance)
        except RedisError as exc:
            log.warning("heartbeat_remove_failed", error=repr(exc))


async def read_instances(
    redis: Redis, names: Names
) -> list[GatewayBeat | WorkerBeat | AggregatorBeat]:
    return parse_beats((await redis.hgetall(names.instances)).values())
