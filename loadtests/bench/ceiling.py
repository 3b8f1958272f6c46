"""The ceiling: a bare aio-pika two-hop relay with the cluster's delivery guarantees.

publisher --confirms--> hop1 --relay: consume, publish with confirm, ack--> hop2 --sink: ack

Durable queues, persistent messages, publisher confirms and manual acks, as in the cluster,
but nothing else: no validation, no Redis, no job. Relay and sink run in processes of their
own, as a worker and the aggregator do, so the ceiling uses the machine the same way.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import aio_pika
from aio_pika.abc import AbstractExchange

from loadtests.bench.cpu import CpuMeter
from shared import codec
from shared.messaging import Publishable, make_message, publish_many_confirmed
from shared.runtime import run_fast

RELAY_PREFETCH = 128
PUBLISH_TIMEOUT_S = 60.0
"""Bounds a publish that the broker never confirms (an alarm), so a ceiling run cannot hang."""
SINK_PREFETCH = 2000


@dataclass(frozen=True)
class Hops:
    url: str
    first: str
    second: str


@dataclass(frozen=True)
class CeilingResult:
    messages: int
    seconds: float
    cpu_us: dict[str, float] = field(default_factory=dict)
    """CPU microseconds per message of the publisher, relay, sink and the servers."""

    @property
    def jobs_s(self) -> float:
        return self.messages / self.seconds


async def bare_publish(
    exchange: AbstractExchange, routing_key: str, message: Publishable, *, timeout_s: float
) -> None:
    """aio-pika's own confirmed publish, as a bare relay would write it (the services go
    below it, :func:`shared.messaging.publish_confirmed`)."""
    if not isinstance(message, aio_pika.Message):
        raise TypeError(f"the ceiling publishes aio-pika Messages, not {message!r}")
    await exchange.publish(message, routing_key, mandatory=True, timeout=timeout_s)


def sample_body(index: int) -> bytes:
    """A body the size of a real job message."""
    return codec.dumps(
        {
            "job_id": f"{'0' * 32}.{index}",
            "batch_id": "0" * 32,
            "kind": "io",
            "n": 10_000,
            "io_ms": 0,
            "submitted_at": time.time(),
            "attempt": 1,
            "trace_id": "0" * 32,
        }
    )


async def _relay(hops: Hops, ready: Connection) -> None:
    connection = await aio_pika.connect_robust(hops.url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=RELAY_PREFETCH)
        queue = await channel.declare_queue(hops.first, durable=True)
        exchange = channel.default_exchange

        async def forward(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await bare_publish(
                exchange, hops.second, make_message(message.body), timeout_s=PUBLISH_TIMEOUT_S
            )
            await message.ack()

        await queue.consume(forward)
        ready.send("ready")
        await asyncio.Future()


async def _sink(hops: Hops, expected: int, report: Connection) -> None:
    connection = await aio_pika.connect_robust(hops.url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=SINK_PREFETCH)
        queue = await channel.declare_queue(hops.second, durable=True)
        received = 0
        done = asyncio.Event()

        async def take(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            await message.ack()
            received += 1
            if received == expected:
                done.set()

        await queue.consume(take)
        report.send("ready")
        await done.wait()
        report.send(time.perf_counter())


def run_relay(hops: Hops, ready: Connection) -> None:
    run_fast(_relay(hops, ready))


def run_sink(hops: Hops, expected: int, report: Connection) -> None:
    run_fast(_sink(hops, expected, report))


async def measure_ceiling(
    hops: Hops, messages: int, *, window: int, servers: Mapping[str, int] | None = None
) -> CeilingResult:
    """Relay ``messages`` through both hops; time from the first publish to the last ack.

    CPU time is read for the three relay processes and for ``servers`` (name -> pid).
    """
    context = multiprocessing.get_context("spawn")
    relay_ready, relay_end = context.Pipe(duplex=False)
    sink_report, sink_end = context.Pipe(duplex=False)
    relay = context.Process(target=run_relay, args=(hops, relay_end), daemon=True)
    sink = context.Process(target=run_sink, args=(hops, messages, sink_end), daemon=True)
    relay.start()
    sink.start()
    try:
        loop = asyncio.get_running_loop()
        for pipe in (relay_ready, sink_report):
            await loop.run_in_executor(None, pipe.recv)
        meter = CpuMeter(
            {"publisher": os.getpid(), "relay": relay.pid or 0, "sink": sink.pid or 0}
            | dict(servers or {}),
            alone=frozenset({"publisher"}),
        )
        connection = await aio_pika.connect_robust(hops.url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            before = meter.read()
            started = time.perf_counter()
            items = ((hops.first, make_message(sample_body(i))) for i in range(messages))
            await publish_many_confirmed(
                channel.default_exchange,
                items,
                window=window,
                timeout_s=PUBLISH_TIMEOUT_S,
                publish=bare_publish,
            )
        finished: float = await loop.run_in_executor(None, sink_report.recv)
        cpu_us = CpuMeter.per_job_us(before, meter.read(), messages)
        return CeilingResult(messages, finished - started, cpu_us)
    finally:
        for process in (relay, sink):
            process.terminate()
            process.join(timeout=10)
