"""The gateway's HTTP API: accept batches, publish their jobs confirmed, answer status.

A ``202`` is the promise that every job of the batch is confirmed by the broker. When the
broker or Redis is away the answer is ``503`` with ``Retry-After``; nothing is half-accepted
silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path as FilePath
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from redis.exceptions import RedisError

from services.gateway.backlog import BacklogMonitor
from services.gateway.instrument import HttpMetricsMiddleware
from services.gateway.overview import BatchesInFlight, build_overview
from services.gateway.publisher import new_batch_id, publish_batch
from services.gateway.submit_body import (
    SUBMIT_OPENAPI,
    SUBMIT_RESPONSES,
    batch_request,
    document_submit,
    trace_id,
)
from services.gateway.waiters import BatchWaiters
from shared.api import (
    MAX_WAIT_S,
    BatchAccepted,
    BatchLatencies,
    BatchState,
    BatchStatus,
    Health,
    Instances,
    Paths,
    Readiness,
)
from shared.batches import abort_batch, create_batch, read_batch, read_latencies
from shared.heartbeat import GatewayBeat, read_instances
from shared.jobs import BatchRequest
from shared.logging import job_context
from shared.messaging import PublishFailed, PublishProgress
from shared.metrics import GatewayMetrics
from shared.service import ServiceRuntime
from shared.settings import Settings

log = structlog.get_logger()

FINISHED_CACHE_SIZE = 1024
"""Done batches whose status each gateway keeps in memory."""

RETRY_AFTER_S = 2
ABORT_TIMEOUT_S = 5.0
STATIC_DIR = FilePath(__file__).parent / "static"
BATCH_ID = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="id from POST /batches")]


class Unavailable(Exception):
    """A dependency is away: the client should retry later, nothing was accepted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Gateway:
    """The gateway's connections and background tasks, opened and closed in one place."""

    def __init__(
        self,
        settings: Settings,
        metrics: GatewayMetrics | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.settings = settings
        self.names = settings.names
        self.metrics = metrics or GatewayMetrics(settings.instance, process_metrics=False)
        self.on_failure = on_failure
        self.accepted_batches = 0
        self.accepted_jobs = 0
        self.finished: OrderedDict[str, BatchStatus] = OrderedDict()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Gateway]:
        """uvicorn owns the signals and serves ``/metrics`` itself; the runtime the rest."""
        async with ServiceRuntime(
            self.settings,
            "gateway",
            self.metrics,
            publishing=True,
            metrics_port=0,
            handle_signals=False,
            on_failure=self.on_failure,
        ) as runtime:
            self.redis = runtime.redis
            self.connection = runtime.connection
            self.channel = runtime.channel
            self.exchange = self.channel.default_exchange
            self.backlog = BacklogMonitor(self.connection, self.names)
            self.metrics.track_queue_depths(lambda: self.backlog.latest)
            self.batches_in_flight = BatchesInFlight(self.redis, self.names, self.metrics)
            self.waiters = BatchWaiters(self.redis, self.names.batch_done_channel)
            runtime.spawn(self.waiters.run(), name="batch_waiters")
            runtime.spawn(self.backlog.run(), name="queue_depths")
            runtime.spawn(self.batches_in_flight.run(), name="batches_in_flight")
            runtime.start_heartbeat(
                GatewayBeat,
                self.stats,
                port=self.settings.gateway_port,
                metrics_port=self.settings.gateway_port,
            )
            log.info("gateway_started", port=self.settings.gateway_port)
            yield self

    def stats(self) -> dict[str, Any]:
        return {
            "accepted_batches": self.accepted_batches,
            "accepted_jobs": self.accepted_jobs,
            "waiting_requests": sum(len(w) for w in self.waiters.events.values()),
            "batches_in_flight": self.batches_in_flight.count,
        }

    @property
    def broker_ready(self) -> bool:
        return not self.connection.is_closed and not self.channel.is_closed

    async def submit(self, request: BatchRequest, trace_id: str) -> BatchAccepted:
        if not self.broker_ready:
            raise Unavailable("message broker unreachable")
        if self.backlog.depth >= self.settings.max_backlog:
            raise Unavailable(
                f"backlog of {self.backlog.depth} jobs waiting is at or above the limit "
                f"{self.settings.max_backlog}"
            )
        batch_id = new_batch_id()
        with job_context(batch_id=batch_id, trace_id=trace_id):
            # Logged before publishing, so a batch's lines start with the gateway's.
            log.info("batch_received", kind=request.kind.value, count=request.count)
            started = time.perf_counter()
            progress = PublishProgress()
            try:
                await create_batch(
                    self.redis,
                    self.names,
                    batch_id=batch_id,
                    kind=request.kind,
                    expected=request.count,
                    params=request.params,
                    ttl_s=self.settings.batch_ttl_s,
                )
                await publish_batch(
                    self.exchange,
                    self.names,
                    batch_id,
                    request,
                    trace_id=trace_id,
                    window=self.settings.publish_window,
                    timeout_s=self.settings.publish_timeout_s,
                    progress=progress,
                )
            except BaseException as exc:
                # Cancelled (a client gone, uvicorn's shutdown deadline), a broker failure
                # or Redis away: whatever was published must not leave a batch `running`
                # forever, so it is marked aborted, shielded from a second cancellation.
                cause = exc.cause if isinstance(exc, PublishFailed) else exc
                log.error("batch_publish_failed", confirmed=progress.confirmed, error=repr(cause))
                await asyncio.shield(self.abort_unfinished(batch_id, progress.confirmed))
                if isinstance(exc, PublishFailed):
                    raise Unavailable("message broker did not confirm the batch") from exc
                raise
            publish_ms = round((time.perf_counter() - started) * 1000, 3)
            self.accepted_batches += 1
            self.accepted_jobs += request.count
            self.metrics.batch_accepted(request.kind.value, request.count)
            log.info(
                "batch_accepted",
                kind=request.kind.value,
                count=request.count,
                n=request.params.n,
                io_ms=request.params.io_ms,
                publish_ms=publish_ms,
            )
        return BatchAccepted(
            batch_id=batch_id,
            kind=request.kind,
            expected=request.count,
            status=BatchState.RUNNING,
            status_url=Paths.of(Paths.BATCH, batch_id),
            trace_id=trace_id,
            publish_ms=publish_ms,
        )

    async def abort_unfinished(self, batch_id: str, confirmed: int) -> None:
        """Mark the batch aborted with the jobs confirmed so far; a failure is logged, since
        the batch then stays ``running`` until its TTL and someone should know why."""
        try:
            await asyncio.wait_for(
                abort_batch(self.redis, self.names, batch_id, confirmed=confirmed),
                timeout=ABORT_TIMEOUT_S,
            )
        except (RedisError, TimeoutError) as exc:
            log.error("batch_abort_failed", confirmed=confirmed, error=repr(exc))
        else:
            log.warning("batch_aborted", confirmed=confirmed)

    async def status(self, batch_id: str, wait_s: float) -> BatchStatus | None:
        """The batch's state; with ``wait_s`` it returns as soon as the batch is done."""
        if (finished := self.finished.get(batch_id)) is not None:
            return finished
        event = self.waiters.register(batch_id) if wait_s > 0 else None
        try:
            status = await read_batch(self.redis, self.names, batch_id)
            if status is not None and status.status == BatchState.RUNNING and event is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), timeout=wait_s)
                status = await read_batch(self.redis, self.names, batch_id)
        finally:
            if event is not None:
                self.waiters.unregister(batch_id, event)
        if status is not None and status.status == BatchState.DONE:
            self.remember_finished(status)
        return status

    def remember_finished(self, status: BatchStatus) -> None:
        """A done batch never changes (duplicates are absorbed), so its status, whose
        percentiles cost a read of every job's latency, is computed once per gateway."""
        self.finished[status.batch_id] = status
        while len(self.finished) > FINISHED_CACHE_SIZE:
            self.finished.popitem(last=False)


async def get_gateway(request: Request) -> Gateway:
    """Async, as every dependency here: FastAPI runs a plain ``def`` one in its thread pool,
    a thread hop per request for a lookup."""
    gateway: Gateway = request.app.state.gateway
    return gateway


def create_app(
    settings: Settings,
    metrics: GatewayMetrics | None = None,
    on_failure: Callable[[BaseException], None] | None = None,
) -> FastAPI:
    """The app; ``metrics`` defaults to a fresh registry, so apps built in one process
    (tests) never share figures. ``on_failure`` hears of a background task that failed:
    the server must stop, since uvicorn would serve on without its lifespan."""
    metrics = metrics or GatewayMetrics(settings.instance, process_metrics=False)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with Gateway(settings, metrics, on_failure).running() as gateway:
            app.state.gateway = gateway
            yield

    app = FastAPI(
        telemetry={"tracing": False, "metrics": False, "logs": False},
        title="coord-cluster gateway",
        version="0.1.0",
        description="Submit batches of jobs to the coordination cluster and follow them.",
        lifespan=lifespan,
    )
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    document_submit(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    async def require_api_key(x_api_key: Annotated[str | None, Header()] = None) -> None:
        """Constant-time, so the answer's timing says nothing about how much of a guess
        matched."""
        expected = settings.api_key
        if expected is None:
            return
        given = (x_api_key or "").encode()
        if not hmac.compare_digest(given, expected.get_secret_value().encode()):
            raise HTTPException(401, "missing or wrong X-API-Key header")

    @app.exception_handler(Unavailable)
    async def unavailable(_: Request, exc: Unavailable) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.reason}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)}
        )

    @app.exception_handler(RedisError)
    async def redis_unavailable(_: Request, exc: RedisError) -> JSONResponse:
        log.warning("redis_unavailable", error=repr(exc))
        return JSONResponse(
            {"detail": "state store unreachable"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    @app.post(
        Paths.BATCHES,
        status_code=202,
        response_model=BatchAccepted,
        dependencies=[Depends(require_api_key)] if settings.api_key is not None else [],
        responses=SUBMIT_RESPONSES,
        openapi_extra=SUBMIT_OPENAPI,
    )
    async def submit_batch(request: Request) -> Response:
        """The hot path, kept lean: the body and trace header parsed by hand
        (services/gateway/submit_body.py), the gateway straight from the app's state rather
        than through ``get_gateway`` (each dependency FastAPI solves costs more than the
        lookup it does), and the answer encoded once by the model's own serializer rather
        than validated again against ``response_model``, which stays for the schema."""
        body = batch_request(await request.body(), request.headers.get("content-type"))
        trace = trace_id(request.headers)
        gateway: Gateway = request.app.state.gateway
        accepted = await gateway.submit(body, trace or uuid.uuid4().hex)
        return Response(
            BatchAccepted.__pydantic_serializer__.to_json(accepted),
            status_code=202,
            media_type="application/json",
        )

    @app.get(Paths.BATCH, response_model=BatchStatus, responses={404: {}})
    async def batch_status(
        batch_id: BATCH_ID,
        gateway: Annotated[Gateway, Depends(get_gateway)],
        wait: Annotated[
            float, Query(ge=0, le=MAX_WAIT_S, description="long-poll up to S seconds")
        ] = 0,
    ) -> BatchStatus:
        status = await gateway.status(batch_id, min(wait, settings.max_wait_s))
        if status is None:
            raise HTTPException(404, f"no batch {batch_id}")
        return status

    @app.get(Paths.LATENCIES, response_model=BatchLatencies, responses={404: {}})
    async def batch_latencies(
        batch_id: BATCH_ID, gateway: Annotated[Gateway, Depends(get_gateway)]
    ) -> BatchLatencies:
        latencies = await read_latencies(gateway.redis, gateway.names, batch_id)
        if latencies is None:
            raise HTTPException(404, f"no batch {batch_id}")
        return latencies

    @app.get(Paths.HEALTH, response_model=Health)
    async def healthz() -> Health:
        return Health()

    @app.get(Paths.READINESS, response_model=Readiness, responses={503: {"model": Readiness}})
    async def readyz(gateway: Annotated[Gateway, Depends(get_gateway)]) -> JSONResponse:
        checks = {"broker": gateway.broker_ready}
        try:
            checks["redis"] = bool(await gateway.redis.ping())
        except RedisError:
            checks["redis"] = False
        readiness = Readiness.of(checks)
        return JSONResponse(readiness.model_dump(), status_code=200 if readiness.ready else 503)

    @app.get(
        Paths.INSTANCES,
        response_model=Instances,
        dependencies=[Depends(require_api_key)],
        responses={401: {}},
    )
    async def instances(gateway: Annotated[Gateway, Depends(get_gateway)]) -> Instances:
        return Instances(
            instances=await read_instances(gateway.redis, gateway.names),
            queues=gateway.backlog.depths,
        )

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/overview", dependencies=[Depends(require_api_key)], responses={401: {}})
    async def overview(gateway: Annotated[Gateway, Depends(get_gateway)]) -> dict[str, Any]:
        """Everything the dashboard draws: heartbeats, queue depths, batches in flight."""
        return await build_overview(
            gateway.redis,
            gateway.names,
            depths=gateway.backlog.depths,
            batches_in_flight=gateway.batches_in_flight.count,
            heartbeat_s=settings.heartbeat_s,
        )

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "dashboard.html")

    return app
