"""The ceiling: a bare aio-pika two-hop relay with the cluster's delivery guarantees.

publisher --confirms--> hop1 --relay: consume, publish with confirm, ack--> hop2 --sink: ack

Durable queues, persistent messages, publisher confirms and manual acks, as in the cluster,
but nothing else: no validation, no Redis, no job. Relay and sink run in processes of their
own, as a worker and the aggregator do, so the ceiling uses the machine the same way.
:func:`measure_ceiling` times how fast it goes flat out; :func:`relay_latency` times each
message through it at a set rate, the broker's own latency beside the cluster's.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import aio_pika
from aio_pika.abc import AbstractExchange

from loadtests.bench.cpu import CpuMeter
from loadtests.bench.latencies import latency_figures
from shared import codec
from shared.histogram import LATENCY_BUCKETS
from shared.messaging import (
    Publishable,
    make_message,
    publish_many_confirmed,
)
from shared.runtime import run_fast
from shared.settings import Settings

RELAY_PREFETCH = 128
PUBLISH_TIMEOUT_S = 60.0
"""Bounds a publish that the broker never confirms (an alarm), so a ceiling run cannot hang."""
SINK_PREFETCH = 2000


@dataclass(frozen=True)
class Hops:
    url: str
    first: str
    second: str

    @classmethod
    def of(cls, settings: Settings, purpose: str) -> Hops:
        """The relay's two queues in the settings' namespace, named for ``purpose`` (so the
        namespace's purge takes them along with ``extra_queues``)."""
        return cls(
            settings.amqp_url.get_secret_value(),
            f"{settings.namespace}.{purpose}.hop1",
            f"{settings.namespace}.{purpose}.hop2",
        )


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


async def _timing_sink(hops: Hops, expected: int, skipped: int, report: Connection) -> None:
    """Ack every message and count its latency from the publisher's stamp, after the
    first ``skipped`` (by their index), in the cluster's latency buckets."""
    connection = await aio_pika.connect_robust(hops.url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=SINK_PREFETCH)
        queue = await channel.declare_queue(hops.second, durable=True)
        received = 0
        counts: Counter[int] = Counter()
        done = asyncio.Event()

        async def take(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            now = time.time()
            body = codec.loads(message.body)
            if int(body["job_id"].rsplit(".", 1)[1]) >= skipped:
                counts[LATENCY_BUCKETS.index((now - body["submitted_at"]) * 1000)] += 1
            await message.ack()
            received += 1
            if received == expected:
                done.set()

        await queue.consume(take)
        report.send("ready")
        await done.wait()
        report.send(dict(counts))


def run_relay(hops: Hops, ready: Connection) -> None:
    run_fast(_relay(hops, ready))


def run_sink(hops: Hops, expected: int, report: Connection) -> None:
    run_fast(_sink(hops, expected, report))


def run_timing_sink(hops: Hops, expected: int, skipped: int, report: Connection) -> None:
    run_fast(_timing_sink(hops, expected, skipped, report))


@contextmanager
def relay_processes(
    hops: Hops, sink: Callable[..., None], *sink_args: object
) -> Iterator[tuple[BaseProcess, BaseProcess, Connection]]:
    """The relay and a sink, each in a process of its own, ready to consume, and the
    sink's report pipe. Waiting for them to be ready blocks: nothing is timed yet."""
    context = multiprocessing.get_context("spawn")
    relay_ready, relay_end = context.Pipe(duplex=False)
    sink_report, sink_end = context.Pipe(duplex=False)
    relay = context.Process(target=run_relay, args=(hops, relay_end), daemon=True)
    consumer = context.Process(target=sink, args=(hops, *sink_args, sink_end), daemon=True)
    relay.start()
    consumer.start()
    try:
        for pipe in (relay_ready, sink_report):
            pipe.recv()
        yield relay, consumer, sink_report
    finally:
        for process in (relay, consumer):
            process.terminate()
            process.join(timeout=10)


async def measure_ceiling(
    hops: Hops, messages: int, *, window: int, servers: Mapping[str, int] | None = None
) -> CeilingResult:
    """Relay ``messages`` through both hops; time from the first publish to the last ack.

    CPU time is read for the three relay processes and for ``servers`` (name -> pid).
    """
    with relay_processes(hops, run_sink, messages) as (relay, sink, sink_report):
        loop = asyncio.get_running_loop()
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


async def relay_latency(
    hops: Hops,
    *,
    rate_jobs_s: float,
    seconds: float,
    per_batch: int,
    window: int,
    warmup_s: float = 1.0,
) -> dict[str, Any]:
    """The broker's own latency at a rate: ``per_batch`` confirmed messages every
    ``per_batch / rate_jobs_s`` seconds through the bare relay, each timed from its
    publish to the sink, in the same buckets and with the same warm-up as the cluster's
    :func:`loadtests.bench.cluster.latency_at_rate`. Nothing in this path is ours: its
    tail is the limit a cluster on this broker and machine cannot beat."""
    interval = per_batch / rate_jobs_s
    batches = math.ceil((seconds + warmup_s) / interval)
    skipped = int(warmup_s / interval) * per_batch
    messages = batches * per_batch
    with relay_processes(hops, run_timing_sink, messages, skipped) as (_, _, sink_report):
        loop = asyncio.get_running_loop()
        connection = await aio_pika.connect_robust(hops.url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            started = time.perf_counter()
            publishes: list[asyncio.Task[int]] = []
            late_ms: list[float] = []
            for tick in range(batches):
                due = started + tick * interval
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                late_ms.append((time.perf_counter() - due) * 1000)
                first = tick * per_batch
                items = (
                    (hops.first, make_message(sample_body(first + i))) for i in range(per_batch)
                )
                publishes.append(
                    asyncio.create_task(
                        publish_many_confirmed(
                            channel.default_exchange,
                            items,
                            window=window,
                            timeout_s=PUBLISH_TIMEOUT_S,
                        )
                    )
                )
            await asyncio.gather(*publishes)
        counts: dict[int, int] = await loop.run_in_executor(None, sink_report.recv)
    return latency_figures(counts, rate_jobs_s=rate_jobs_s, late_ms=late_ms)
