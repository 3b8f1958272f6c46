"""``python -m loadtests.soak.channels``: what one passive-declare channel leaves behind.

The gateway's backlog monitor opens and closes a channel for its passive declares twice a
second, for as long as it runs, so whatever a channel leaves on the connection is a leak
of 0.5 MB a minute or so (README, soak section). This opens and closes ``cycles`` channels
of each kind on one robust connection, asking a queue that exists and one that does not
(the broker closes the channel then), and prints the callbacks added to the connection's
own closing future and the bytes tracemalloc still counts, per cycle, after a warm-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

import aio_pika
import typer
from aio_pika.abc import AbstractRobustConnection

from shared.messaging import open_asking_channel, passive_depth
from shared.settings import load_settings

app = typer.Typer(add_completion=False)
Cycle = Callable[[AbstractRobustConnection, str], Awaitable[None]]


async def bare_channel(connection: AbstractRobustConnection, queue: str) -> None:
    """The gateway's way since the fix: :func:`~shared.messaging.open_asking_channel`."""
    channel = await open_asking_channel(connection)
    await passive_depth(channel, queue)
    if not channel.is_closed:
        await channel.close()


async def aio_pika_channel(connection: AbstractRobustConnection, queue: str) -> None:
    """The gateway's way before it: a plain (not robust) aio-pika channel."""
    channel = aio_pika.Channel(connection, publisher_confirms=False)
    await channel
    with contextlib.suppress(aio_pika.exceptions.ChannelClosed):
        await channel.declare_queue(queue, passive=True)
    if not channel.is_closed:
        await channel.close()


def closing_callbacks(connection: AbstractRobustConnection) -> int:
    assert connection.transport is not None
    callbacks = connection.transport.connection._closing._callbacks  # type: ignore[attr-defined]
    return len(callbacks or ())


async def measure(
    connection: AbstractRobustConnection, cycle: Cycle, queue: str, cycles: int
) -> tuple[float, float]:
    """Closing-future callbacks and traced bytes added per cycle."""
    for _ in range(max(50, cycles // 10)):
        await cycle(connection, queue)
    gc.collect()
    tracemalloc.start()
    callbacks, traced = closing_callbacks(connection), tracemalloc.get_traced_memory()[0]
    for _ in range(cycles):
        await cycle(connection, queue)
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - traced
    tracemalloc.stop()
    return (closing_callbacks(connection) - callbacks) / cycles, traced / cycles


async def run(cycles: int) -> None:
    settings = load_settings()
    connection = await aio_pika.connect_robust(settings.amqp_url.get_secret_value())
    async with connection:
        prefix = f"{settings.namespace}.channels-{uuid.uuid4().hex[:8]}"
        channel = await connection.channel()
        present = await channel.declare_queue(f"{prefix}.present", exclusive=True)
        kinds: dict[str, Cycle] = {"aio-pika": aio_pika_channel, "aiormq": bare_channel}
        try:
            for name, cycle in kinds.items():
                for queue in (present.name, f"{prefix}.missing"):
                    added, traced = await measure(connection, cycle, queue, cycles)
                    where = "missing" if queue.endswith("missing") else "present"
                    print(
                        f"{name:9s} queue {where}: {added:+.2f} closing callbacks and "
                        f"{traced:+,.0f} B traced per channel ({cycles} channels)"
                    )
        finally:
            await present.delete(if_unused=False, if_empty=False)


@app.command()
def main(cycles: Annotated[int, typer.Option(min=10)] = 500) -> None:
    """Open and close ``cycles`` channels of each kind; print what each left behind."""
    asyncio.run(run(cycles))


if __name__ == "__main__":
    app()
