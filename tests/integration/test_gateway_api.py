"""The gateway app in-process against the real broker and Redis (no workers running)."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection
from fastapi import FastAPI
from redis.asyncio import Redis
from structlog.testing import capture_logs

from services.aggregator.fold import ResultFolder
from services.gateway.app import Gateway, create_app
from services.gateway.waiters import BatchWaiters
from shared.jobs import BatchRequest, JobKind, JobParams, Result
from shared.messaging import queue_depths
from shared.names import Names
from shared.settings import Settings


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(settings)) as c:
        yield c


async def test_accepted_batch_is_published_and_running(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    answer = await client.post("/batches", json={"kind": "io", "count": 25, "params": {"io_ms": 1}})
    assert answer.status_code == 202
    batch = answer.json()
    assert batch["expected"] == 25
    status = (await client.get(f"/batches/{batch['batch_id']}")).json()
    assert (status["status"], status["completed"], status["expected"]) == ("running", 0, 25)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "gpu", "count": 1}, "kind"),
        ({"kind": "cpu", "count": 0}, "count"),
        ({"kind": "cpu", "count": 100_001}, "count"),
        ({"kind": "cpu", "count": 1, "params": {"n": 2_000_001}}, "n"),
        ({"kind": "io", "count": 1, "params": {"io_ms": -1}}, "io_ms"),
        ({"kind": "io", "count": 1, "params": {"io_ms": 10_001}}, "io_ms"),
        ({"kind": "io", "count": "many"}, "count"),
        ({"count": 1}, "kind"),
    ],
)
async def test_bad_batches_get_422_with_the_field(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    answer = await client.post("/batches", json=body)
    assert answer.status_code == 422
    assert any(field in error["loc"] for error in answer.json()["detail"])


async def test_unknown_and_malformed_batch_ids(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"/batches/{'0' * 32}")).status_code == 404
    assert (await client.get("/batches/not-an-id")).status_code == 422
    assert (await client.get(f"/batches/{'0' * 32}?wait=61")).status_code == 422


async def test_latencies_are_a_histogram_of_every_folded_job(
    client: httpx.AsyncClient, settings: Settings, redis: Redis
) -> None:
    answer = await client.post("/batches", json={"kind": "io", "count": 2, "params": {"io_ms": 1}})
    batch_id = answer.json()["batch_id"]
    empty = (await client.get(f"/batches/{batch_id}/latencies")).json()
    assert (empty["count"], empty["buckets"], empty["summary"]["p50"]) == (0, [], None)
    now = time.time()
    folded = [
        Result(f"{batch_id}.{i}", batch_id, JobKind.IO, True, 1, now - 0.1 * (i + 1), now, "w")
        for i in range(2)
    ]
    await ResultFolder(redis, settings.names, ttl_s=600).fold(folded)
    latencies = (await client.get(f"/batches/{batch_id}/latencies")).json()
    assert latencies["count"] == sum(b["count"] for b in latencies["buckets"]) == 2
    assert len(latencies["buckets"]) == 2
    slack = 1 + latencies["relative_error"]
    summary = latencies["summary"]
    assert 100 / slack <= summary["p50"] < summary["max"] < 1000
    assert all(b["le_ms"] >= 100 for b in latencies["buckets"])
    assert (await client.get(f"/batches/{'0' * 32}/latencies")).status_code == 404


async def test_a_large_batch_answers_in_a_bounded_size(
    client: httpx.AsyncClient, settings: Settings, redis: Redis
) -> None:
    """The answers do not grow with the batch: 3,000 jobs spread over four decades of
    latency still give a few hundred buckets at most."""
    answer = await client.post("/batches", json={"kind": "io", "count": 5000})
    batch_id = answer.json()["batch_id"]
    now = time.time()
    folder = ResultFolder(redis, settings.names, ttl_s=600)
    for start in range(0, 3000, 500):
        await folder.fold(
            [
                Result(f"{batch_id}.{i}", batch_id, JobKind.IO, True, 1, now - i / 300, now, "w")
                for i in range(start, start + 500)
            ]
        )
    latencies = await client.get(f"/batches/{batch_id}/latencies")
    assert latencies.json()["count"] == 3000
    assert len(latencies.content) < 16_000
    status = await client.get(f"/batches/{batch_id}")
    assert status.json()["completed"] == 3000
    assert len(status.content) < 1_000


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"broker": True, "redis": True}


async def test_api_key_guards_writes_when_configured(settings: Settings) -> None:
    guarded = settings.replace(api_key="sekrit")
    async with serve(create_app(guarded)) as client:
        body = {"kind": "io", "count": 1}
        assert (await client.post("/batches", json=body)).status_code == 401
        bad_body = await client.post("/batches", json={"kind": "gpu"})
        assert bad_body.status_code == 401, "no validation details before the key is checked"
        wrong = await client.post("/batches", json=body, headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401
        right = await client.post("/batches", json=body, headers={"X-API-Key": "sekrit"})
        assert right.status_code == 202
        for path in ("/healthz", "/readyz", "/metrics", f"/batches/{right.json()['batch_id']}"):
            assert (await client.get(path)).status_code == 200, path
        for path in ("/instances", "/api/overview"):
            assert (await client.get(path)).status_code == 401, path
            assert (await client.get(path, headers={"X-API-Key": "sekri"})).status_code == 401
            assert (await client.get(path, headers={"X-API-Key": "sekrit"})).status_code == 200
        non_ascii = await client.post(
            "/batches", json=body, headers={"X-API-Key": "sékrit".encode("latin-1")}
        )
        assert non_ascii.status_code == 401


async def test_backlog_limit_answers_503_with_retry_after(settings: Settings) -> None:
    limited = settings.replace(max_backlog=10)
    async with serve(create_app(limited)) as client:
        first = await client.post("/batches", json={"kind": "io", "count": 11})
        assert first.status_code == 202
        for _ in range(50):
            answer = await client.post("/batches", json={"kind": "io", "count": 1})
            if answer.status_code != 202:
                break
            await asyncio.sleep(0.1)
        assert answer.status_code == 503
        assert int(answer.headers["Retry-After"]) >= 1
        assert "backlog" in answer.json()["detail"]


async def test_a_done_batch_is_read_from_redis_once(
    client: httpx.AsyncClient, settings: Settings, redis: Redis
) -> None:
    batch_id = (await client.post("/batches", json={"kind": "io", "count": 1})).json()["batch_id"]
    await redis.hset(settings.names.batch(batch_id), mapping={"completed": 1, "status": "done"})
    first = (await client.get(f"/batches/{batch_id}")).json()
    assert first["status"] == "done"
    await redis.delete(settings.names.batch(batch_id))
    assert (await client.get(f"/batches/{batch_id}")).json() == first


@pytest.mark.parametrize("count", [1, 3], ids=["one job, published directly", "windowed"])
async def test_an_unroutable_batch_answers_503(
    client: httpx.AsyncClient,
    settings: Settings,
    amqp: AbstractRobustConnection,
    redis: Redis,
    count: int,
) -> None:
    """No jobs queue: the broker returns every job, so nothing may be promised with a 202,
    and the batch is marked aborted with nothing confirmed."""
    async with amqp.channel() as channel:
        await channel.queue_delete(settings.names.jobs_queue)
    answer = await client.post("/batches", json={"kind": "io", "count": count})
    assert answer.status_code == 503, answer.text
    assert "did not confirm" in answer.json()["detail"]
    (batch_id,) = await redis.zrange(settings.names.batches_index, 0, -1)
    fields = await redis.hgetall(settings.names.batch(batch_id))
    assert (fields["status"], fields["confirmed"]) == ("aborted", "0")


async def cancel_mid_publish(gateway: Gateway, redis: Redis, names: Names) -> str:
    """Start a large submit, cancel it once publishing is under way; the batch's id."""
    request = BatchRequest(kind=JobKind.IO, count=20_000, params=JobParams(io_ms=0))
    submit = asyncio.create_task(gateway.submit(request, "trace"))
    batch_ids: list[str] = []
    for _ in range(200):
        await asyncio.sleep(0.02)
        batch_ids = await redis.zrange(names.batches_index, 0, -1)
        if batch_ids and (await queue_depths(gateway.connection, names))[names.jobs_queue] > 0:
            break
    return await finish_cancelled(submit, batch_ids)


async def finish_cancelled(submit: asyncio.Task[object], batch_ids: list[str]) -> str:
    submit.cancel()
    with pytest.raises(asyncio.CancelledError):
        await submit
    assert len(batch_ids) == 1
    return batch_ids[0]


async def test_a_cancelled_submit_aborts_its_batch(settings: Settings, redis: Redis) -> None:
    async with Gateway(settings.replace(publish_window=8)).running() as gateway:
        batch_id = await cancel_mid_publish(gateway, redis, settings.names)
        fields = await redis.hgetall(settings.names.batch(batch_id))
        assert fields["status"] == "aborted", fields
        assert 0 < int(fields["confirmed"]) < 20_000


async def test_an_abort_that_fails_is_logged(settings: Settings, redis: Redis) -> None:
    names = settings.names
    async with Gateway(settings.replace(publish_window=8)).running() as gateway:
        request = BatchRequest(kind=JobKind.IO, count=20_000, params=JobParams(io_ms=0))
        submit = asyncio.create_task(gateway.submit(request, "trace"))
        batch_ids: list[str] = []
        for _ in range(200):
            await asyncio.sleep(0.02)
            batch_ids = await redis.zrange(names.batches_index, 0, -1)
            if batch_ids:
                break
        # A real Redis error for the abort: the batch's key is no longer a hash.
        await redis.delete(names.batch(batch_ids[0]))
        await redis.set(names.batch(batch_ids[0]), "not a hash")
        with capture_logs() as logs:
            await finish_cancelled(submit, batch_ids)
    failed = [e for e in logs if e["event"] == "batch_abort_failed"]
    assert failed and "ResponseError" in failed[0]["error"], logs


async def test_a_dead_long_poll_listener_stops_the_gateway_loudly(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listener catches only Redis's errors; anything else must not leave long-polls
    waiting on nobody: the runtime logs it and tells the server to stop."""

    async def broken(self: BatchWaiters) -> None:
        raise RuntimeError("listener bug")

    monkeypatch.setattr(BatchWaiters, "run", broken)
    failures: list[BaseException] = []
    app = create_app(settings, on_failure=failures.append)
    with capture_logs() as logs, pytest.raises(ExceptionGroup):
        async with app.router.lifespan_context(app):
            await asyncio.sleep(5)
    assert [str(error) for error in failures] == ["listener bug"]
    failed = [line for line in logs if line["event"] == "background_task_failed"]
    assert [line["task"] for line in failed] == ["batch_waiters"]


async def test_a_body_not_sent_as_json_or_a_long_trace_id_gets_422_naming_the_header(
    client: httpx.AsyncClient,
) -> None:
    body = b'{"kind": "io", "count": 1}'
    plain = await client.post("/batches", content=body, headers={"content-type": "text/plain"})
    assert plain.status_code == 422
    assert plain.json()["detail"][0]["loc"] == ["header", "content-type"]
    long = await client.post(
        "/batches", json={"kind": "io", "count": 1}, headers={"x-trace-id": "t" * 65}
    )
    assert long.status_code == 422
    assert long.json()["detail"][0]["loc"] == ["header", "x-trace-id"]
    traced = await client.post(
        "/batches", json={"kind": "io", "count": 1}, headers={"x-trace-id": "t" * 64}
    )
    assert traced.status_code == 202
    assert traced.json()["trace_id"] == "t" * 64
