"""One service's life, written once: open what it needs, run its background tasks, close.

Every service (gateway, worker, aggregator) runs inside a :class:`ServiceRuntime`. It
opens, in this order, logging, the signal handlers, the metrics server, Redis, the
RabbitMQ connection and channel (qos, publisher confirms), the topology, a task group
with the loop-lag monitor and the log of long garbage-collector pauses, and freezes the
start-up heap (``COORD_GC_FREEZE``); once the service says what it reports, the heartbeat.
It closes them in the reverse order through one ``AsyncExitStack``, whatever happened.

A background task that ends with an error nobody expected is logged
(``background_task_failed``) and, through the task group, ends the service with that
error: a dead listener or heartbeat is never left unnoticed while the rest runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine, Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Protocol, TypeVar

import structlog
from aio_pika.abc import AbstractChannel, AbstractQueue, AbstractRobustConnection
from redis.asyncio import Redis

from shared.gcfreeze import freeze_startup_heap
from shared.gcpauses import GcPauses
from shared.heartbeat import Beat, Heartbeat
from shared.logging import configure_logging
from shared.looplag import LoopLagMonitor
from shared.messaging import (
    connect_amqp,
    declare_topology,
    open_publishing_channel,
    settle_dead_queue,
)
from shared.metrics import Metrics
from shared.redis_client import connect_redis
from shared.settings import Settings

log = structlog.get_logger()
T = TypeVar("T")
Closable = TypeVar("Closable", bound="_SupportsClose")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _SupportsClose(Protocol):
    def close(self) -> None: ...


class ServiceRuntime:
    """The resources and background tasks of one service process.

    ``prefetch`` sets the channel's qos; ``publishing`` gives a channel whose publishes
    fail unless routed and confirmed (:func:`~shared.messaging.open_publishing_channel`).
    ``metrics_port`` defaults to the settings' (0: no server, as for the gateway, which
    serves ``/metrics`` itself). ``log_fields`` configures logging with those fields bound;
    ``None`` leaves logging as the caller set it. ``handle_signals`` makes SIGTERM and
    SIGINT set :attr:`stop`; ``on_failure`` is called when a background task fails, for a
    host (uvicorn) that must be told to stop.
    """

    def __init__(
        self,
        settings: Settings,
        service: str,
        metrics: Metrics,
        *,
        prefetch: int | None = None,
        publishing: bool = False,
        metrics_port: int | None = None,
        log_fields: Mapping[str, Any] | None = None,
        handle_signals: bool = True,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.settings = settings
        self.service = service
        self.metrics = metrics
        self.prefetch = prefetch
        self.publishing = publishing
        self.metrics_port = settings.metrics_port if metrics_port is None else metrics_port
        self.log_fields = log_fields
        self.handle_signals = handle_signals
        self.on_failure = on_failure
        self.stop = asyncio.Event()
        self.lag = LoopLagMonitor(
            settings.loop_lag_interval_s, idle_interval_s=settings.loop_lag_idle_interval_s
        )
        self.heartbeat: Heartbeat | None = None
        self.served_metrics_port = 0
        self.background: set[asyncio.Task[Any]] = set()
        self.stack = AsyncExitStack()

    async def __aenter__(self) -> ServiceRuntime:
        await self.stack.__aenter__()
        try:
            await self._open(self.stack)
        except BaseException as exc:
            await self.stack.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        try:
            return bool(await self.stack.__aexit__(exc_type, exc, traceback))
        except BaseExceptionGroup as group:
            if exc is not None and group.exceptions == (exc,):
                raise exc from None  # the body's own error, which the task group wrapped
            raise

    async def _open(self, stack: AsyncExitStack) -> None:
        if self.log_fields is not None:
            configure_logging(self.settings, self.service, **self.log_fields)
        self.log: structlog.BoundLogger = structlog.get_logger()
        stack.callback(log.info, f"{self.service}_stopped")
        if self.handle_signals:
            self._handle_signals(stack)
        server = self.metrics.serve_if_enabled(
            self.settings.effective_metrics_host, self.metrics_port
        )
        if server is not None:
            self.served_metrics_port = server.port
            stack.callback(server.close)
        self.redis: Redis = await connect_redis(self.settings)
        stack.push_async_callback(self.redis.aclose)
        self.connection: AbstractRobustConnection = await connect_amqp(self.settings)
        stack.push_async_callback(_close_quietly, self.connection)
        self.channel: AbstractChannel = await (
            open_publishing_channel(self.connection)
            if self.publishing
            else self.connection.channel()
        )
        if self.prefetch is not None:
            await self.channel.set_qos(prefetch_count=self.prefetch)
        dead_policy = await settle_dead_queue(self.connection, self.settings)
        self.queues: dict[str, AbstractQueue] = await declare_topology(
            self.channel, self.settings.names, dead_policy
        )
        self.resources = await stack.enter_async_context(AsyncExitStack())
        stack.push_async_callback(self._remove_heartbeat)
        gc_pauses = (
            stack.enter_context(GcPauses(self.settings.gc_pause_log_ms))
            if self.settings.gc_pause_log_ms > 0
            else None
        )
        self.tasks = await stack.enter_async_context(asyncio.TaskGroup())
        stack.callback(self._cancel_background)
        self.metrics.track_loop_lag(self.lag)
        if gc_pauses is not None:
            self.lag.observers.append(gc_pauses.log_kept)
        self.spawn(self.lag.run(), name="loop_lag")
        if self.settings.gc_freeze:
            log.info("startup_heap_frozen", objects=freeze_startup_heap())

    def _handle_signals(self, stack: AsyncExitStack) -> None:
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self._request_stop, signum)
            stack.callback(loop.remove_signal_handler, signum)

    def _request_stop(self, signum: int) -> None:
        if not self.stop.is_set():
            log.info("shutdown_requested", signal=signal.Signals(signum).name)
        self.stop.set()

    def closing(self, resource: Closable) -> Closable:
        """Close ``resource`` once the background tasks have ended, before the connections."""
        self.resources.callback(resource.close)
        return resource

    def spawn(self, coroutine: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
        """Run ``coroutine`` in the service's task group until it ends or the service stops."""
        task = self.tasks.create_task(coroutine, name=name)
        self.background.add(task)
        task.add_done_callback(self._task_done)
        return task

    def start_heartbeat(
        self, model: type[Beat], stats: Callable[[], Mapping[str, Any]], **static: Any
    ) -> None:
        """Beat this instance's ``model``: identity, ``stats`` and loop lag, every
        ``heartbeat_s``."""

        def figures() -> dict[str, Any]:
            return {
                **stats(),
                "loop_lag_ms": self.lag.snapshot(),
                "loop_lag_recent_ms": self.lag.recent_snapshot(),
            }

        self.heartbeat = Heartbeat(
            self.redis,
            self.settings.names,
            model=model,
            instance=self.settings.instance,
            interval_s=self.settings.heartbeat_s,
            stats=figures,
            **{"metrics_port": self.served_metrics_port, **static},
        )
        self.spawn(self.heartbeat.run(), name="heartbeat")

    async def cancel(self, task: asyncio.Task[Any]) -> None:
        """Cancel one background task and wait until it has ended."""
        task.cancel()
        await asyncio.wait([task])

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.background.discard(task)
        if task.cancelled() or (error := task.exception()) is None:
            return
        log.error(
            "background_task_failed",
            task=task.get_name(),
            error=repr(error),
            exc_info=(type(error), error, error.__traceback__),
        )
        if self.on_failure is not None:
            self.on_failure(error)

    def _cancel_background(self) -> None:
        for task in list(self.background):
            task.cancel()

    async def _remove_heartbeat(self) -> None:
        if self.heartbeat is not None:
            await self.heartbeat.remove()


async def _close_quietly(connection: AbstractRobustConnection) -> None:
    """A connection to a broker that is gone cannot close cleanly; that is no failure."""
    with contextlib.suppress(Exception):
        await connection.close()
