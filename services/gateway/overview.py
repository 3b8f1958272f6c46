"""What the dashboard shows, gathered in one JSON document: ``GET /api/overview``.

Every figure already exists elsewhere: each instance's heartbeat (counters, in-flight
jobs, pool occupancy, loop lag), the gateway's cached queue depths, and the count of
running batches that :class:`BatchesInFlight` keeps. Throughput is left to the page: it
divides the change of a counter by the change of the heartbeat's ``last_seen``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.batches import count_running_batches
from shared.heartbeat import read_instances
from shared.metrics import GatewayMetrics
from shared.names import Names
from shared.periodic import periodic

log = structlog.get_logger()

STALE_BEATS = 3


class BatchesInFlight:
    """Counts running batches once a second, for the dashboard and ``coord_batches_in_flight``."""

    def __init__(
        self, redis: Redis, names: Names, metrics: GatewayMetrics, *, interval_s: float = 1.0
    ) -> None:
        self.redis = redis
        self.names = names
        self.metrics = metrics
        self.interval_s = interval_s
        self.count = 0

    async def refresh(self) -> None:
        self.count = await count_running_batches(self.redis, self.names)
        self.metrics.set_batches_in_flight(self.count)

    async def run(self) -> None:
        await periodic("batches_in_flight", self.refresh, self.interval_s, survives=(RedisError,))


def short_queue_names(names: Names, depths: Mapping[str, int]) -> dict[str, int]:
    """``{ns}.jobs`` -> ``jobs``: the namespace is shown once, not on every bar."""
    prefix = f"{names.namespace}."
    return {name.removeprefix(prefix): depth for name, depth in depths.items()}


async def build_overview(
    redis: Redis,
    names: Names,
    *,
    depths: Mapping[str, int],
    batches_in_flight: int,
    heartbeat_s: float,
) -> dict[str, Any]:
    now = time.time()
    instances = []
    for beat in await read_instances(redis, names):
        age_s = max(0.0, now - beat.last_seen)
        instances.append(
            {
                **beat.model_dump(mode="json"),
                "age_s": round(age_s, 3),
                "stale": age_s > STALE_BEATS * heartbeat_s + 1,
            }
        )
    return {
        "namespace": names.namespace,
        "now": now,
        "heartbeat_s": heartbeat_s,
        "instances": instances,
        "queues": short_queue_names(names, depths),
        "batches_in_flight": batches_in_flight,
    }
