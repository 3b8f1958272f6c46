"""The dead-letter queue: bounded, listed with reasons, requeued or purged (`cluster dead`)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from structlog.testing import capture_logs

from coordctl.dead import list_dead, purge_dead, requeue_dead
from shared.jobs import Job, JobKind, decode_job
from shared.messaging import (
    declare_topology,
    make_message,
    open_publishing_channel,
    queue_depths,
    settle_dead_queue,
)
from shared.settings import Settings

CLUSTER = str(Path(sys.executable).with_name("cluster"))


async def dead_letter(channel: AbstractChannel, settings: Settings, bodies: list[bytes]) -> None:
    """Each body through the jobs queue and rejected, as a worker does with poison."""
    names = settings.names
    jobs = await channel.get_queue(names.jobs_queue)
    for index, body in enumerate(bodies):
        await channel.default_exchange.publish(
            make_message(body, headers={"job_id": f"j{index}"}), routing_key=names.jobs_queue
        )
        message = await jobs.get(timeout=5)
        await message.reject(requeue=False)


async def wait_depth(
    amqp: AbstractRobustConnection, settings: Settings, queue: str, depth: int
) -> int:
    seen = -1
    for _ in range(50):
        seen = (await queue_depths(amqp, settings.names))[queue]
        if seen == depth:
            break
        await asyncio.sleep(0.1)
    return seen


async def test_the_dead_letter_queue_keeps_only_the_newest(
    settings: Settings, amqp: AbstractRobustConnection
) -> None:
    bounded = settings.replace(dead_max_length=5)
    channel = await open_publishing_channel(amqp)
    await declare_topology(channel, bounded.names, await settle_dead_queue(amqp, bounded))
    await dead_letter(channel, bounded, [f"poison {i}".encode() for i in range(8)])
    names = bounded.names
    assert await wait_depth(amqp, bounded, names.dead_queue, 5) == 5
    total, letters = await list_dead(bounded, limit=10)
    assert total == 5
    assert [letter.preview for letter in letters] == [f"poison {i}" for i in range(3, 8)]


async def test_list_requeue_and_purge(settings: Settings, amqp: AbstractRobustConnection) -> None:
    names = settings.names
    channel = await open_publishing_channel(amqp)
    await declare_topology(channel, names, await settle_dead_queue(amqp, settings))
    spent = Job("b.0", "b" * 32, JobKind.CPU, n=10_000, io_ms=0, submitted_at=time.time())
    spent.attempt = settings.max_attempts
    await dead_letter(channel, settings, [spent.encode(), b"not json", b"{}"])
    assert await wait_depth(amqp, settings, names.dead_queue, 3) == 3

    total, letters = await list_dead(settings, limit=2)
    assert (total, len(letters)) == (3, 2)
    first = letters[0]
    assert (first.reason, first.origin, first.deaths) == ("rejected", names.jobs_queue, 1)
    assert first.headers == {"job_id": "j0"} and first.died_at
    assert await wait_depth(amqp, settings, names.dead_queue, 3) == 3  # listing keeps them

    assert await requeue_dead(settings, limit=1) == {names.jobs_queue: 1}
    jobs = await channel.get_queue(names.jobs_queue)
    revived = await jobs.get(timeout=5)
    assert decode_job(revived.body).attempt == 1 and revived.headers == {"job_id": "j0"}
    await revived.ack()

    assert await purge_dead(settings) == 2
    assert await wait_depth(amqp, settings, names.dead_queue, 0) == 0


async def test_a_queue_declared_unbounded_is_used_then_recreated(
    settings: Settings, amqp: AbstractRobustConnection
) -> None:
    """An earlier version declared the queue without bounds: redeclaring it with them
    fails (PRECONDITION_FAILED). Services say so in one line and use it as it is."""
    names = settings.names
    async with amqp.channel() as channel:
        await channel.declare_queue(names.dead_queue, durable=True)
    with capture_logs() as logs:
        policy = await settle_dead_queue(amqp, settings)
    assert policy.passive
    assert [e["fix"] for e in logs if e["event"] == "dead_queue_arguments_differ"]
    channel = await open_publishing_channel(amqp)
    await declare_topology(channel, names, policy)
    await dead_letter(channel, settings, [b"poison"])
    assert await wait_depth(amqp, settings, names.dead_queue, 1) == 1

    assert await purge_dead(settings, recreate=True) == 1
    assert not (await settle_dead_queue(amqp, settings)).passive


async def test_cluster_dead_output_is_bounded(
    settings: Settings, amqp: AbstractRobustConnection
) -> None:
    channel = await open_publishing_channel(amqp)
    await declare_topology(channel, settings.names, await settle_dead_queue(amqp, settings))
    await dead_letter(channel, settings, [b"x" * 10_000 for _ in range(5)])
    assert await wait_depth(amqp, settings, settings.names.dead_queue, 5) == 5
    env = {
        **os.environ,
        "COORD_NAMESPACE": settings.namespace,
        "COORD_AMQP_URL": settings.amqp_url.get_secret_value(),
        "COLUMNS": "200",
    }

    def cluster(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLUSTER, "dead", *args], env=env, capture_output=True, text=True, timeout=60
        )

    listed = cluster("list", "--limit", "2", "--json")
    assert listed.returncode == 0, listed.stderr
    report = json.loads(listed.stdout)
    assert report["total"] == 5 and len(report["letters"]) == 2
    assert all(len(letter["preview"]) <= 120 for letter in report["letters"])
    assert "5 dead letters, 2 shown" in cluster("list", "--limit", "2").stdout
    purged = cluster("purge", "--yes")
    assert purged.returncode == 0 and "purged 5" in purged.stdout
