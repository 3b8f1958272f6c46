"""The gateway's backlog monitor asks the broker twice a second for as long as it runs:
whatever one round leaves behind on the connection is a leak of the gateway's memory."""

import uuid

import pytest
from aio_pika.abc import AbstractRobustConnection

from services.gateway.backlog import EVERY_QUEUE_EVERY, BacklogMonitor
from shared.messaging import declare_topology, queue_depths
from shared.names import Names
from shared.settings import Settings


def closing_observers(connection: AbstractRobustConnection) -> int:
    """Callbacks waiting on the connection's own closing future: each channel aio-pika
    opens adds some, and its close did not take them all away again (aio-pika 10.2 with
    aiormq 7.2, see :func:`shared.messaging.open_asking_channel`)."""
    assert connection.transport is not None
    callbacks = connection.transport.connection._closing._callbacks  # type: ignore[attr-defined]
    return len(callbacks or ())


@pytest.fixture
async def monitor(settings: Settings, amqp: AbstractRobustConnection) -> BacklogMonitor:
    """A monitor of a declared topology after a full round and then the jobs queue alone,
    on the channel it keeps."""
    channel = await amqp.channel()
    await declare_topology(channel, settings.names)
    monitor = BacklogMonitor(amqp, settings.names)
    for _ in range(2):
        await monitor.refresh()
    return monitor


async def test_asking_depths_leaves_nothing_on_the_connection(
    settings: Settings, amqp: AbstractRobustConnection, monitor: BacklogMonitor
) -> None:
    assert monitor.depth == 0 and monitor.depths[settings.names.retry_queue] == 0
    assert amqp.transport is not None
    before = closing_observers(amqp), len(amqp.transport.connection.channels)
    for _ in range(3 * EVERY_QUEUE_EVERY):
        await monitor.refresh()
    absent = Names(f"absent{uuid.uuid4().hex[:8]}")
    for _ in range(3):
        assert set((await queue_depths(amqp, absent)).values()) == {-1}
    assert (closing_observers(amqp), len(amqp.transport.connection.channels)) == before


async def test_the_jobs_queue_is_asked_on_one_kept_channel_reopened_after_a_miss(
    settings: Settings, amqp: AbstractRobustConnection, monitor: BacklogMonitor
) -> None:
    kept = monitor.asking
    assert kept is not None and not kept.is_closed
    for _ in range(EVERY_QUEUE_EVERY + 1):
        await monitor.refresh()
    assert monitor.asking is kept and not kept.is_closed
    missing = BacklogMonitor(amqp, Names(f"absent{uuid.uuid4().hex[:8]}"))
    assert await missing.jobs_depth() == -1
    closed = missing.asking
    assert closed is not None and closed.is_closed
    assert await missing.jobs_depth() == -1 and missing.asking is not closed
    await monitor.close()
    await missing.close()
    assert kept.is_closed and monitor.asking is None
