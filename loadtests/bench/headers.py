"""``python -m loadtests.bench.headers``: what an AMQP headers table costs the broker.

The gateway's job messages carry ``job_id``, ``batch_id`` and ``trace_id`` in a headers table
(the worker's results no longer do). This publishes ``messages`` persistent, mandatory,
confirmed job-sized messages into a queue of its own and consumes them with manual acks,
once with that table and once without, the order swapped every round. The medians of
RabbitMQ's CPU µs per message (psutil) and of the rate are printed with the load average.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from typing import Annotated

import aio_pika
import typer
from aio_pika.abc import AbstractIncomingMessage

from loadtests.bench.cpu import cpu_seconds, server_pids
from shared.jobs import Job, JobKind
from shared.messaging import make_message
from shared.runtime import run_fast
from shared.settings import Settings, load_settings

app = typer.Typer(add_completion=False)


def job_message(batch_id: str, index: int, *, headers: bool) -> aio_pika.Message:
    job = Job(
        job_id=f"{batch_id}.{index}",
        batch_id=batch_id,
        kind=JobKind.IO,
        n=2,
        io_ms=0,
        submitted_at=time.time(),
        trace_id=batch_id,
    )
    table = {"job_id": job.job_id, "batch_id": batch_id, "trace_id": batch_id}
    return make_message(job.encode(), headers=table if headers else None, message_id=job.job_id)


async def one_run(
    settings: Settings, broker_pid: int, *, headers: bool, messages: int, in_flight: int
) -> tuple[float, float]:
    """Broker CPU µs per message and messages per second, publish to last ack."""
    connection = await aio_pika.connect(settings.amqp_url.get_secret_value())
    try:
        publishing = await connection.channel(publisher_confirms=True, on_return_raises=True)
        consuming = await connection.channel()
        await consuming.set_qos(prefetch_count=in_flight)
        queue = await consuming.declare_queue(
            f"{settings.namespace}.bench-headers.{uuid.uuid4().hex[:8]}", durable=True
        )
        acked = 0
        all_acked = asyncio.Event()

        async def on_message(message: AbstractIncomingMessage) -> None:
            nonlocal acked
            await message.ack()
            acked += 1
            if acked == messages:
                all_acked.set()

        consumer_tag = await queue.consume(on_message)
        batch_id = uuid.uuid4().hex
        window = asyncio.Semaphore(in_flight)

        async def publish(index: int) -> None:
            async with window:
                await publishing.default_exchange.publish(
                    job_message(batch_id, index, headers=headers),
                    routing_key=queue.name,
                    mandatory=True,
                )

        cpu, started = cpu_seconds(broker_pid), time.perf_counter()
        await asyncio.gather(*(publish(index) for index in range(messages)))
        await all_acked.wait()
        spent, elapsed = cpu_seconds(broker_pid) - cpu, time.perf_counter() - started
        await queue.cancel(consumer_tag)
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()
    return spent * 1e6 / messages, messages / elapsed


async def measure(messages: int, rounds: int, in_flight: int) -> dict[str, tuple[float, float]]:
    settings = load_settings()
    broker_pid = server_pids(settings).get("broker", 0)
    if not broker_pid:
        raise SystemExit("bench headers: RabbitMQ's process is not visible on this machine")
    ways = {"with headers": True, "without": False}
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    for index in range(rounds):
        for name in list(ways) if index % 2 == 0 else list(reversed(ways)):
            runs[name].append(
                await one_run(
                    settings,
                    broker_pid,
                    headers=ways[name],
                    messages=messages,
                    in_flight=in_flight,
                )
            )
    return {
        name: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs))
        for name, rs in runs.items()
    }


@app.command()
def main(
    messages: Annotated[int, typer.Option(min=100)] = 10_000,
    rounds: Annotated[int, typer.Option(min=1)] = 6,
    in_flight: Annotated[int, typer.Option(min=1)] = 256,
) -> None:
    """Print the medians of the broker's CPU µs per message and of the rate."""
    load = os.getloadavg()[0]
    for name, (broker_us, rate) in run_fast(measure(messages, rounds, in_flight)).items():
        print(f"{name:>13}: broker {broker_us:6.0f} µs/message, {rate:7.0f} messages/s")
    print(
        f"{rounds} alternating rounds of {messages:,} messages, {in_flight} in flight;"
        f" load {load:.1f} -> {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    app()
