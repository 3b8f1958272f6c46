"""Baselines for the gateway benchmark: the same ``POST /batches`` with less or no work.

``bare`` is Starlette answering 202 at once: what uvicorn alone costs per request.
``fastapi`` parses and validates the body with the gateway's own ``BatchRequest`` model
before answering: what the framework adds. ``publish`` is bare Starlette doing the I/O a
one-job submit must do: one Redis pipeline write (the batch record) and one persistent,
confirmed publish of a job message like the gateway's, into the namespace ``COORD_NAMESPACE`` names:
the benchmark's cluster's by default, whose worker and aggregator then run and fold these
jobs as they do the gateway's. The gateway's rate over ``publish``'s is its own overhead on
top of that I/O.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared.batches import create_batch
from shared.jobs import BatchRequest, Job, JobKind, JobParams
from shared.messaging import (
    connect_amqp,
    declare_topology,
    make_message,
    open_publishing_channel,
    publish_confirmed,
    settle_dead_queue,
)
from shared.redis_client import connect_redis
from shared.settings import load_settings


async def accept(_: Request) -> JSONResponse:
    return JSONResponse({"batch_id": uuid.uuid4().hex, "status": "running"}, status_code=202)


bare = Starlette(routes=[Route("/batches", accept, methods=["POST"])])

validated = FastAPI(title="gateway baseline")


@validated.post("/batches", status_code=202)
async def accept_validated(body: BatchRequest) -> dict[str, str]:
    return {"batch_id": uuid.uuid4().hex, "kind": body.kind.value, "status": "running"}


@asynccontextmanager
async def publishing(app: Starlette) -> AsyncIterator[None]:
    """One Redis client and one confirmed channel for the process, as the gateway holds."""
    settings = load_settings()
    redis = await connect_redis(settings)
    connection = await connect_amqp(settings)
    channel = await open_publishing_channel(connection)
    await declare_topology(channel, settings.names, await settle_dead_queue(connection, settings))
    app.state.settings, app.state.redis, app.state.exchange = (
        settings,
        redis,
        channel.default_exchange,
    )
    try:
        yield
    finally:
        await connection.close()
        await redis.aclose()


async def accept_published(request: Request) -> JSONResponse:
    settings, names = request.app.state.settings, request.app.state.settings.names
    await request.body()
    batch_id = uuid.uuid4().hex
    params = JobParams(io_ms=0)
    await create_batch(
        request.app.state.redis,
        names,
        batch_id=batch_id,
        kind=JobKind.IO,
        expected=1,
        params=params,
        ttl_s=settings.batch_ttl_s,
    )
    job = Job(
        job_id=f"{batch_id}.0",
        batch_id=batch_id,
        kind=JobKind.IO,
        n=params.n,
        io_ms=0,
        submitted_at=time.time(),
        trace_id=batch_id,
    )
    await publish_confirmed(
        request.app.state.exchange,
        names.jobs_queue,
        make_message(job.encode(), message_id=job.job_id),
        timeout_s=settings.publish_timeout_s,
    )
    return JSONResponse({"batch_id": batch_id, "status": "running"}, status_code=202)


publish = Starlette(
    routes=[Route("/batches", accept_published, methods=["POST"])], lifespan=publishing
)
