"""What every service shares about starting and stopping: signals and the heartbeat."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared import codec
from shared.interpreter import gil_enabled, python_build
from shared.names import Names

log = structlog.get_logger()


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set ``stop``; the service then drains and closes within a deadline."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _request_stop, stop, signum)


def _request_stop(stop: asyncio.Event, signum: int) -> None:
    if not stop.is_set():
        log.info("shutdown_requested", signal=signal.Signals(signum).name)
    stop.set()


def raise_if_cancelling(cause: BaseException | None = None) -> None:
    """Raise the cancellation a client library swallowed or turned into its own error.

    aiormq and redis-py can answer a cancellation that lands mid-call with a channel or
    connection error, or absorb it; a periodic loop that carried on would never stop. Loops
    call this in their error path and before they sleep.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling() > 0:
        raise asyncio.CancelledError from cause


class Heartbeat:
    """Publishes this instance's identity and live figures to Redis every ``interval_s``.

    ``cluster status``, the comparison and the dashboard read these; an entry whose
    ``last_seen`` is old belongs to an instance that died without saying goodbye.
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
        **static: Any,
    ) -> None:
        self.redis = redis
        self.names = names
        self.interval_s = interval_s
        self.stats = stats
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

    async def run(self) -> None:
        while True:
            try:
                await self.redis.hset(
                    self.names.instances, self.identity["instance"], self.payload()
                )
            except RedisError as exc:
                raise_if_cancelling(exc)
                log.warning("heartbeat_failed", error=repr(exc))
            raise_if_cancelling()
            await asyncio.sleep(self.interval_s)

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
