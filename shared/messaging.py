"""RabbitMQ: robust connections, the namespaced topology, and confirmed publishing.

Guarantees: durable queues, persistent messages, publisher confirms. A publish returns
only once the broker has confirmed it, so a caller never reports success for a message
the broker might have lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

import aio_pika
import aiormq
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aiormq import spec

from shared.names import RETRY_DELAYS_MS, Names
from shared.retry import with_retries
from shared.settings import Settings

PERSISTENT = aio_pika.DeliveryMode.PERSISTENT
log = structlog.get_logger()

BROKER_ERRORS: tuple[type[Exception], ...] = (
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
)
"""What a publish, ack or reject raises while the broker is away; the robust connection
reconnects by itself, and every unacked message is redelivered."""


PUBLISH_REFUSED: tuple[type[Exception], ...] = (aiormq.exceptions.DeliveryError, TimeoutError)
"""What a publish raises while the channel stays open: the broker nacked it, returned it as
unroutable (``PublishError``, a ``DeliveryError``), or did not confirm it within
``COORD_PUBLISH_TIMEOUT_S`` (a memory or disk alarm blocks publishers)."""


async def open_publishing_channel(connection: AbstractConnection) -> AbstractChannel:
    """A channel whose publishes fail unless the broker routed and confirmed them.

    aio-pika's default ``on_return_raises=False`` resolves a returned (unroutable) message
    as if it were confirmed, which would make ``mandatory=True`` meaningless.
    """
    return await connection.channel(publisher_confirms=True, on_return_raises=True)


class Subscription:
    """One consumer on one queue with manual acks, as both the worker and the aggregator run it.

    Stopping asks the broker for no more messages; the ones delivered but not yet acked go
    back to the queue when the channel closes, so stopping never loses a message.
    """

    def __init__(
        self,
        queue: AbstractQueue,
        on_message: Callable[[AbstractIncomingMessage], Awaitable[Any]],
    ) -> None:
        self.queue = queue
        self.on_message = on_message
        self.tag: str | None = None

    async def start(self, **log_fields: Any) -> None:
        self.tag = await self.queue.consume(self.on_message, no_ack=False)
        log.info("consuming", queue=self.queue.name, **log_fields)

    async def stop(self) -> None:
        if self.tag is None:
            return
        try:
            await self.queue.cancel(self.tag)
        except BROKER_ERRORS as exc:
            log.warning("cancel_consumer_failed", error=repr(exc))
        self.tag = None


def live_channel(message: AbstractIncomingMessage) -> object | None:
    """The message's channel, or None once it has closed (aio-pika raises then)."""
    try:
        channel = message.channel
    except BROKER_ERRORS:
        return None
    return None if channel.is_closed else channel


def from_lost_channel(message: AbstractIncomingMessage) -> bool:
    """True for a message whose channel has closed: the broker redelivers it, and it can
    no longer be acked, so working on it is wasted."""
    return bool(message.channel.is_closed)


@dataclass
class PublishProgress:
    """How many messages of a run of publishes the broker has confirmed so far; readable
    by the caller even when the run was cancelled part-way."""

    confirmed: int = 0


class PublishFailed(Exception):
    """Publishing stopped part-way; exactly ``confirmed`` messages were confirmed."""

    def __init__(self, confirmed: int, cause: BaseException) -> None:
        super().__init__(f"publishing failed after {confirmed} confirmed: {cause!r}")
        self.confirmed = confirmed
        self.cause = cause


async def connect_amqp(settings: Settings, *, attempts: int = 30) -> AbstractRobustConnection:
    """A robust connection: once established it reconnects by itself after a broker restart."""
    url = settings.amqp_url.get_secret_value()
    return await with_retries(
        lambda: aio_pika.connect_robust(
            url, client_properties={"connection_name": settings.instance}
        ),
        what="amqp_connect",
        attempts=attempts,
    )


@dataclass(frozen=True)
class DeadQueuePolicy:
    """The bounds of the dead-letter queue, which nothing consumes on its own: the newest
    ``max_length`` letters, each for at most ``ttl_s``; the oldest are dropped first.

    ``passive`` means the queue exists with other arguments (declared by an earlier
    version, or with other bounds): it is used as it is, since re-declaring it would fail
    with PRECONDITION_FAILED and deleting it would lose its letters.
    """

    max_length: int = 100_000
    ttl_s: int = 7 * 86_400
    passive: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> DeadQueuePolicy:
        return cls(max_length=settings.dead_max_length, ttl_s=settings.dead_ttl_s)

    @property
    def arguments(self) -> dict[str, Any]:
        return {
            "x-max-length": self.max_length,
            "x-overflow": "drop-head",
            "x-message-ttl": self.ttl_s * 1000,
        }


async def settle_dead_queue(
    connection: AbstractRobustConnection, settings: Settings
) -> DeadQueuePolicy:
    """Declare the bounded dead-letter queue on a channel of its own; when it already exists
    with other arguments, say so in one line and use it as it is (``passive``)."""
    policy = DeadQueuePolicy.from_settings(settings)
    channel = await connection.channel(publisher_confirms=False)
    try:
        await channel.declare_queue(
            settings.names.dead_queue, durable=True, arguments=policy.arguments
        )
    except aio_pika.exceptions.ChannelPreconditionFailed as exc:
        log.warning(
            "dead_queue_arguments_differ",
            queue=settings.names.dead_queue,
            wanted=policy.arguments,
            error=str(exc),
            fix="cluster dead purge --recreate",
        )
        return replace(policy, passive=True)
    finally:
        if not channel.is_closed:
            await channel.close()
    return policy


async def declare_topology(
    channel: AbstractChannel, names: Names, dead_policy: DeadQueuePolicy | None = None
) -> dict[str, AbstractQueue]:
    """Declare every exchange and queue of the namespace (idempotent)."""
    dead_policy = dead_policy or DeadQueuePolicy()
    dlx = await channel.declare_exchange(
        names.dead_exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    if dead_policy.passive:
        dead = await channel.declare_queue(names.dead_queue, passive=True)
    else:
        dead = await channel.declare_queue(
            names.dead_queue, durable=True, arguments=dead_policy.arguments
        )
    await dead.bind(dlx, routing_key=names.dead_queue)
    dead_lettered: dict[str, Any] = {
        "x-dead-letter-exchange": names.dead_exchange,
        "x-dead-letter-routing-key": names.dead_queue,
    }
    jobs = await channel.declare_queue(names.jobs_queue, durable=True, arguments=dead_lettered)
    results = await channel.declare_queue(
        names.results_queue, durable=True, arguments=dead_lettered
    )
    declared = {"jobs": jobs, "results": results, "dead": dead}
    for delay_ms in RETRY_DELAYS_MS:
        declared[f"retry.{delay_ms}ms"] = await channel.declare_queue(
            names.delay_queue(delay_ms),
            durable=True,
            arguments={
                "x-message-ttl": delay_ms,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": names.jobs_queue,
            },
        )
    return declared


def make_message(
    body: bytes,
    *,
    headers: Mapping[str, Any] | None = None,
    message_id: str | None = None,
    expiration_s: float | None = None,
) -> aio_pika.Message:
    return aio_pika.Message(
        body,
        delivery_mode=PERSISTENT,
        content_type="application/json",
        headers=dict(headers or {}),
        message_id=message_id,
        expiration=expiration_s,
    )


class Publishable(Protocol):
    """What a publish needs: an :class:`aio_pika.Message` or an :class:`Outgoing`."""

    @property
    def body(self) -> bytes: ...

    @property
    def properties(self) -> spec.Basic.Properties: ...


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A persistent JSON message as the services publish it, its properties built straight
    as pamqp's: an :class:`aio_pika.Message`, and the copy of its properties that aio-pika
    makes on publish, cost about 20 times as much per message."""

    body: bytes
    properties: spec.Basic.Properties

    @classmethod
    def json(cls, body: bytes, *, message_id: str | None = None) -> Outgoing:
        """No headers table: the ids travel in the body (``loadtests.bench.headers``)."""
        return cls(
            body,
            spec.Basic.Properties(
                delivery_mode=PERSISTENT.value,
                content_type="application/json",
                message_id=message_id,
            ),
        )


async def publish_confirmed(
    exchange: AbstractExchange, routing_key: str, message: Publishable, *, timeout_s: float
) -> None:
    """Publish and wait for the broker's confirm; raises if it is not routed to a queue and
    confirmed within ``timeout_s`` (on a channel from :func:`open_publishing_channel`).

    It goes to aiormq's channel as aio-pika's ``Exchange.publish`` does (a robust channel
    waits for its reconnect there), but without waiting, under the channel's lock, for the
    frames to reach the socket: aio-pika waits, so one publish per channel gets through per
    loop turn. The confirm is awaited all the same.
    """
    if not isinstance(exchange, aio_pika.Exchange):
        raise TypeError(f"publishing needs an aio-pika Exchange, not {exchange!r}")
    if exchange.channel.is_closed:
        raise aiormq.exceptions.ChannelInvalidStateError(f"{exchange.channel!r} closed")
    channel = await exchange.channel.get_underlay_channel()
    publish = (
        partial(channel.basic_publish, wait=False)
        if isinstance(channel, aiormq.Channel)
        else channel.basic_publish
    )
    await publish(
        message.body,
        exchange=exchange.name,
        routing_key=routing_key,
        properties=message.properties,
        mandatory=True,
        timeout=timeout_s,
    )


class PublishOne(Protocol):
    def __call__(
        self,
        exchange: AbstractExchange,
        routing_key: str,
        message: Publishable,
        *,
        timeout_s: float,
    ) -> Awaitable[None]: ...


async def publish_many_confirmed(
    exchange: AbstractExchange,
    items: Iterable[tuple[str, Publishable]],
    *,
    window: int,
    timeout_s: float,
    progress: PublishProgress | None = None,
    publish: PublishOne | None = None,
) -> int:
    """Publish many messages with up to ``window`` confirms in flight at once, each by
    ``publish`` (:func:`publish_confirmed` by default).

    Returns how many were confirmed. On the first failure it stops publishing, waits for
    what is in flight and raises :class:`PublishFailed` with the confirmed count, which
    never includes an unconfirmed message. ``progress``, when given, holds the same count
    as it grows, so a caller that is cancelled still knows it.
    """
    slots = asyncio.Semaphore(window)
    in_flight: set[asyncio.Task[None]] = set()
    progress = progress if progress is not None else PublishProgress()
    failure: BaseException | None = None

    def settle(task: asyncio.Task[None]) -> None:
        nonlocal failure
        in_flight.discard(task)
        slots.release()
        if task.cancelled():
            failure = failure or asyncio.CancelledError()
        elif task.exception() is not None:
            failure = failure or task.exception()
        else:
            progress.confirmed += 1

    try:
        for routing_key, message in items:
            await slots.acquire()
            if failure is not None:
                slots.release()
                break
            task = asyncio.ensure_future(
                (publish or publish_confirmed)(exchange, routing_key, message, timeout_s=timeout_s)
            )
            in_flight.add(task)
            task.add_done_callback(settle)
        if in_flight:
            await asyncio.wait(set(in_flight))
    except BaseException:
        for task in in_flight:
            task.cancel()
        raise
    if failure is not None:
        raise PublishFailed(progress.confirmed, failure) from failure
    return progress.confirmed


async def open_asking_channel(connection: AbstractConnection) -> aiormq.abc.AbstractChannel:
    """A bare aiormq channel for passive declares, which the broker closes at a missing queue.

    Not an aio-pika channel, robust or plain. A robust connection's own channels reopen
    themselves once the broker has closed them, so each missing queue asked through one
    left an open channel behind (a gateway asking twice a second piled them up until the
    broker's channel limit). A plain ``aio_pika.Channel`` stays closed but leaks on the
    connection instead: aio-pika 10.2's ``UnderlayChannel`` hangs a close callback on
    ``connection.closing`` at open and, at close, removes it from ``connection.closing``
    read a second time; aiormq 7.2's ``closing`` returns a new observer future at every
    read, so the removal misses and the connection keeps two observers, each with a
    ``OneShotCallback``, its lock, event and task, per channel closed (one per channel
    the broker closed): about 4 KB per channel, 0.5 MB a minute for the gateway's
    backlog monitor, idle or busy. aiormq's own channel hangs nothing on the connection.
    """
    transport = connection.transport
    if transport is None:
        raise aiormq.exceptions.ChannelInvalidStateError("no connection to the broker")
    return await transport.connection.channel(publisher_confirms=False)


async def passive_depth(channel: aiormq.abc.AbstractChannel, queue: str) -> int:
    """Messages ready in ``queue``, or -1 where it does not exist (the channel is then
    closed by the broker)."""
    try:
        declared = await channel.queue_declare(queue, passive=True)
    except aiormq.exceptions.ChannelClosed:
        return -1
    return declared.message_count or 0


async def queue_depths(connection: AbstractConnection, names: Names) -> dict[str, int]:
    """Messages ready in each queue of the namespace, or -1 where it does not exist.

    A passive declare creates nothing; because a missing queue closes the channel, the
    next queue is asked on a fresh one, and the last is closed before returning. A channel
    kept across calls was tried and dropped: the broker closes it at every missing queue.
    """
    depths: dict[str, int] = {}
    channel = await open_asking_channel(connection)
    try:
        for name in names.all_queues:
            if channel.is_closed:
                channel = await open_asking_channel(connection)
            depths[name] = await passive_depth(channel, name)
    finally:
        if not channel.is_closed:
            await channel.close()
    return summed_delay_queues(names, depths)


def summed_delay_queues(names: Names, depths: dict[str, int]) -> dict[str, int]:
    """One ``retry`` figure for all the delay queues (and a leftover pre-tier retry queue)."""
    delayed = [depths.pop(name) for name in names.delay_queues]
    present = [d for d in (*delayed, depths[names.retry_queue]) if d >= 0]
    depths[names.retry_queue] = sum(present) if present else -1
    return depths
