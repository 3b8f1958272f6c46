"""The one gateway client against the real gateway (real broker and Redis, no workers).

The async client talks to the app in-process; the blocking one to the app served by
uvicorn on a real port. Jobs are completed by folding their results with the
aggregator's own fold, so the long-poll returns the moment the last one lands.
"""

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
import pytest
import uvicorn
from aio_pika.abc import AbstractRobustConnection
from fastapi import FastAPI
from redis.asyncio import Redis

from coordctl.client import AsyncGatewayClient, BatchUnfinished, GatewayClient, GatewayError
from coordctl.servers import free_port, wait_listening
from services.aggregator.fold import ResultFolder
from services.gateway.app import create_app
from shared.api import BatchState, Instances
from shared.jobs import BatchRequest, JobKind, JobParams, Result
from shared.settings import Settings

IO_BATCH = BatchRequest(kind=JobKind.IO, count=3, params=JobParams(io_ms=1))


@asynccontextmanager
async def in_process(app: FastAPI, api_key: str | None = None) -> AsyncIterator[AsyncGatewayClient]:
    async with app.router.lifespan_context(app), asgi_client(app, api_key) as client:
        yield client


def asgi_client(app: FastAPI, api_key: str | None = None) -> AsyncGatewayClient:
    transport = httpx.ASGITransport(app=app)
    return AsyncGatewayClient("http://gateway", api_key=api_key, transport=transport)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncGatewayClient]:
    async with in_process(create_app(settings)) as c:
        yield c


@contextmanager
def served(settings: Settings) -> Iterator[str]:
    """The gateway app on a real port, in a thread with its own event loop."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_listening("127.0.0.1", port, timeout_s=30, what="the gateway")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


async def fold_all(redis: Redis, settings: Settings, batch_id: str, count: int) -> None:
    now = time.time()
    await ResultFolder(redis, settings.names, ttl_s=600).fold(
        [
            Result(f"{batch_id}.{i}", batch_id, JobKind.IO, True, 1, now - 0.05, now, "w-1")
            for i in range(count)
        ]
    )


async def test_submit_then_long_poll_returns_when_the_last_job_lands(
    client: AsyncGatewayClient, settings: Settings, redis: Redis
) -> None:
    accepted = await client.submit(IO_BATCH, trace_id="trace-1")
    assert (accepted.kind, accepted.expected, accepted.status) == (JobKind.IO, 3, "running")
    assert accepted.trace_id == "trace-1"
    running = await client.status(accepted.batch_id)
    assert (running.status, running.completed) == (BatchState.RUNNING, 0)

    waiting = asyncio.create_task(client.wait(accepted.batch_id, timeout_s=30, must_finish=True))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    started = time.monotonic()
    await fold_all(redis, settings, accepted.batch_id, 3)
    done = await waiting
    assert time.monotonic() - started < 5
    assert (done.status, done.completed, done.result.sum, done.workers) == (
        BatchState.DONE,
        3,
        3,
        {"w-1": 3},
    )
    latencies = await client.latencies(accepted.batch_id)
    assert sum(latencies.histogram().values()) == latencies.count == 3


async def test_wait_ends_at_its_deadline(client: AsyncGatewayClient) -> None:
    accepted = await client.submit(IO_BATCH)
    still = await client.wait(accepted.batch_id, timeout_s=0.5)
    assert still.status == BatchState.RUNNING
    with pytest.raises(BatchUnfinished, match=r"still running after 0s \(0/3 jobs\)"):
        await client.wait(accepted.batch_id, timeout_s=0.5, must_finish=True)


async def test_readiness_health_and_instances(client: AsyncGatewayClient) -> None:
    assert (await client.health()).status == "ok"
    readiness = await client.readiness()
    assert readiness.ready and readiness.checks == {"broker": True, "redis": True}
    for _ in range(50):
        instances = await client.instances()
        if instances.instances:
            break
        await asyncio.sleep(0.1)
    assert [beat.service for beat in instances.instances] == ["gateway"]


async def test_refusals_are_one_line_errors(client: AsyncGatewayClient) -> None:
    with pytest.raises(GatewayError) as lost:
        await client.status("0" * 32)
    assert lost.value.status_code == 404
    assert str(lost.value) == f"gateway answered 404: no batch {'0' * 32}"
    with pytest.raises(GatewayError) as malformed:
        await client.latencies("not-an-id")
    assert malformed.value.status_code == 422
    assert str(malformed.value).startswith("gateway answered 422: path.batch_id: String should")
    assert "\n" not in str(malformed.value)


async def test_api_key_is_sent_when_set(settings: Settings) -> None:
    app = create_app(settings.replace(api_key="sekrit"))
    async with in_process(app) as anonymous, asgi_client(app, "sekrit") as keyed:
        with pytest.raises(GatewayError, match="answered 401: missing or wrong X-API-Key"):
            await anonymous.submit(IO_BATCH)
        with pytest.raises(GatewayError, match="answered 401"):
            await anonymous.instances()
        assert (await keyed.submit(IO_BATCH)).expected == 3
        assert isinstance(await keyed.instances(), Instances)


async def test_unavailable_carries_retry_after(
    client: AsyncGatewayClient, settings: Settings, amqp: AbstractRobustConnection
) -> None:
    async with amqp.channel() as channel:
        await channel.queue_delete(settings.names.jobs_queue)
    with pytest.raises(GatewayError) as refused:
        await client.submit(IO_BATCH)
    assert (refused.value.status_code, refused.value.retry_after_s) == (503, 2.0)
    assert str(refused.value) == (
        "gateway answered 503: message broker did not confirm the batch (retry after 2 s)"
    )


async def test_blocking_client_on_a_real_port(settings: Settings, redis: Redis) -> None:
    with served(settings) as url, GatewayClient.for_settings(settings, url=url) as client:
        assert client.readiness().ready
        assert client.health().status == "ok"
        accepted = await asyncio.to_thread(client.submit, IO_BATCH)
        waiting = asyncio.create_task(
            asyncio.to_thread(client.wait, accepted.batch_id, timeout_s=30)
        )
        await asyncio.sleep(0.3)
        await fold_all(redis, settings, accepted.batch_id, 3)
        done = await waiting
        assert (done.status, done.completed) == (BatchState.DONE, 3)
        assert client.latencies(accepted.batch_id).count == 3
        with pytest.raises(GatewayError, match="answered 404"):
            client.status("f" * 32)
    refused = f"no gateway answers at {url} \\(ConnectError\\)"
    with GatewayClient(url, timeout_s=2) as gone, pytest.raises(GatewayError, match=refused):
        gone.readiness()


async def test_the_gateway_stops_cleanly_cycle_after_cycle(settings: Settings) -> None:
    """Start, submit, read and stop, 20 times: a background task that ignores its
    cancellation would leave the gateway's shutdown waiting for ever. redis-py 8.2.0's
    pub/sub read did, within 2 or 3 cycles, until the listener learnt to wake itself
    (services/gateway/waiters.py). Each cycle runs as a task of its own, so a hang fails
    here in seconds instead of at the suite's timeout."""

    async def cycle() -> None:
        async with in_process(create_app(settings)) as client:
            assert (await client.submit(IO_BATCH)).expected == 3
            await client.instances()

    for index in range(20):
        running = asyncio.create_task(cycle())
        done, _ = await asyncio.wait([running], timeout=15)
        assert done, f"cycle {index + 1}: the gateway did not stop within 15 s"
        running.result()
