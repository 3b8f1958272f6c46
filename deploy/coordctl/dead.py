"""The dead-letter queue by hand: list its letters with why they died, requeue or purge them.

Nothing consumes the dead-letter queue on its own (a letter waits for a person), so it is
bounded (``COORD_DEAD_MAX_LENGTH``, ``COORD_DEAD_TTL_S``) and these are the ways out.
Listing takes letters without acking them and closes the channel, which puts every one back
where it was; requeueing publishes each to the queue it died in (confirmed, mandatory)
before acking it, so a letter is never lost, at worst requeued twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from shared.codec import loads
from shared.jobs import InvalidMessage, decode_job
from shared.messaging import (
    DeadQueuePolicy,
    make_message,
    open_publishing_channel,
    publish_confirmed,
)
from shared.settings import Settings

MAX_LISTED = 1000
PREVIEW_CHARS = 120
HEADERS_SHOWN = ("job_id", "batch_id", "trace_id")


def letter_ids(headers: Mapping[str, Any], body: bytes) -> dict[str, str]:
    """The job's ids from the letter's headers or, since jobs and results carry them in
    their body only (a headers table costs the broker on every message), from its body."""
    if shown := {k: str(headers[k]) for k in HEADERS_SHOWN if k in headers}:
        return shown
    try:
        decoded = loads(body)
    except ValueError:
        return {}
    if not isinstance(decoded, dict):
        return {}
    return {k: str(decoded[k]) for k in HEADERS_SHOWN if isinstance(decoded.get(k), str)}


class DeadLetterError(RuntimeError):
    """A one-line reason the CLI prints (no queue, broker away, ...)."""


@dataclass(frozen=True)
class DeadLetter:
    reason: str
    origin: str
    deaths: int
    died_at: str
    headers: dict[str, str]
    size: int
    preview: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def describe(message: AbstractIncomingMessage) -> DeadLetter:
    """Why and where a letter died, from RabbitMQ's ``x-death`` header (newest first)."""
    headers: Mapping[str, Any] = message.headers or {}
    raw = headers.get("x-death")
    deaths: list[Any] = raw if isinstance(raw, list) else []
    last: Mapping[str, Any] = deaths[0] if deaths and isinstance(deaths[0], Mapping) else {}
    died = last.get("time")
    return DeadLetter(
        reason=str(last.get("reason", "unknown")),
        origin=str(last.get("queue", "unknown")),
        deaths=sum(int(d.get("count", 1)) for d in deaths if isinstance(d, Mapping)),
        died_at=died.astimezone(dt.UTC).isoformat() if isinstance(died, dt.datetime) else "",
        headers=letter_ids(headers, message.body),
        size=len(message.body),
        preview=message.body[:PREVIEW_CHARS].decode("utf-8", "replace"),
    )


async def _dead_queue(channel: AbstractChannel, settings: Settings) -> AbstractQueue:
    try:
        return await channel.declare_queue(settings.names.dead_queue, passive=True)
    except aio_pika.exceptions.ChannelClosed as exc:
        raise DeadLetterError(
            f"no dead-letter queue {settings.names.dead_queue} (has this cluster run yet?)"
        ) from exc


async def _connect(settings: Settings) -> aio_pika.abc.AbstractConnection:
    try:
        return await aio_pika.connect(settings.amqp_url.get_secret_value(), timeout=10)
    except (OSError, aio_pika.exceptions.AMQPException) as exc:
        raise DeadLetterError(f"RabbitMQ unreachable ({exc.__class__.__name__})") from exc


async def list_dead(settings: Settings, limit: int) -> tuple[int, list[DeadLetter]]:
    """How many letters wait, and the oldest ``limit`` of them; all stay in the queue."""
    limit = max(0, min(limit, MAX_LISTED))
    async with await _connect(settings) as connection:
        channel = await connection.channel()
        queue = await _dead_queue(channel, settings)
        total = queue.declaration_result.message_count or 0
        letters: list[DeadLetter] = []
        for _ in range(min(limit, total)):
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            letters.append(describe(message))
        await channel.close()  # every letter taken goes back, unacked, in its place
    return total, letters


def _revived(message: AbstractIncomingMessage, target: str, settings: Settings) -> bytes:
    """A job gets its attempts back: it died after using them up, so it would otherwise get
    a single try; anything else is republished byte for byte."""
    if target != settings.names.jobs_queue:
        return message.body
    try:
        job = decode_job(message.body)
    except InvalidMessage:
        return message.body
    job.attempt, job.deferrals = 1, 0
    return job.encode()


async def requeue_dead(settings: Settings, limit: int) -> dict[str, int]:
    """Move up to ``limit`` letters back to the queue each died in (jobs or results; jobs
    when unknown); returns how many went to each."""
    names = settings.names
    targets = {names.jobs_queue, names.results_queue}
    moved: dict[str, int] = {}
    async with await _connect(settings) as connection:
        channel = await open_publishing_channel(connection)
        queue = await _dead_queue(channel, settings)
        for _ in range(max(0, limit)):
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            origin = describe(message).origin
            target = origin if origin in targets else names.jobs_queue
            headers = {k: v for k, v in (message.headers or {}).items() if not k.startswith("x-")}
            await publish_confirmed(
                channel.default_exchange,
                target,
                make_message(
                    _revived(message, target, settings),
                    headers=headers,
                    message_id=message.message_id,
                ),
                timeout_s=settings.publish_timeout_s,
            )
            await message.ack()
            moved[target] = moved.get(target, 0) + 1
    return moved


async def purge_dead(settings: Settings, *, recreate: bool = False) -> int:
    """Drop every letter; with ``recreate``, delete the queue and declare it again with the
    configured bounds (the way out of a queue an earlier version declared unbounded)."""
    names = settings.names
    async with await _connect(settings) as connection:
        channel = await connection.channel()
        queue = await _dead_queue(channel, settings)
        if not recreate:
            result = await queue.purge()
            return int(result.message_count or 0)
        count = queue.declaration_result.message_count or 0
        await channel.queue_delete(names.dead_queue)
        policy = DeadQueuePolicy.from_settings(settings)
        fresh = await channel.declare_queue(
            names.dead_queue, durable=True, arguments=policy.arguments
        )
        dlx = await channel.declare_exchange(
            names.dead_exchange, aio_pika.ExchangeType.DIRECT, durable=True
        )
        await fresh.bind(dlx, routing_key=names.dead_queue)
        return count
