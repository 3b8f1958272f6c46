"""The one client of the gateway's HTTP API, sync and async, typed by :mod:`shared.api`.

The CLI, the launcher's readiness wait, the benchmarks, the soak and the comparison all
speak to a cluster through it. Every failure — no connection, a timeout, a refusal, a body
that is not the expected model — is one :class:`GatewayError` whose message is one line a
person can act on. What a call sends and how its answer is read is a :class:`Call`, shared
by both clients, so they differ only in how they wait.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from shared.api import (
    API_KEY_HEADER,
    MAX_WAIT_S,
    TRACE_ID_HEADER,
    BatchAccepted,
    BatchLatencies,
    BatchState,
    BatchStatus,
    ErrorAnswer,
    Health,
    Instances,
    Paths,
    Readiness,
)
from shared.jobs import BatchRequest
from shared.settings import Settings

AnswerT = TypeVar("AnswerT", bound=BaseModel)

DEFAULT_TIMEOUT_S = 30.0
LONG_POLL_MARGIN_S = 10.0
"""How much longer than its ``wait`` a long-poll request may take before it times out."""
MAX_RETRY_PAUSE_S = 1.0
KEEPALIVE_EXPIRY_S = 2.0
"""Idle pooled connections are dropped well before uvicorn's 5 s keep-alive timeout: at the
same 5 s (httpx's default) a request could go out on a connection the gateway was closing
and fail with a ``ReadError``, as a latency run under load did."""


class GatewayError(Exception):
    """The gateway could not be reached or refused; ``str()`` is the one-line reason."""

    def __init__(
        self, reason: str, *, status_code: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code
        self.retry_after_s = retry_after_s
        """Set on a ``503``: how long the gateway asks the client to wait before retrying."""


class BatchUnfinished(GatewayError):
    """A batch waited for with ``must_finish`` was still running at the deadline."""


@dataclass(frozen=True)
class Call(Generic[AnswerT]):
    """One request, and which answers carry ``answer``'s model."""

    method: str
    path: str
    answer: type[AnswerT]
    accepted: tuple[int, ...] = (200,)
    params: dict[str, float] | None = None
    body: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    timeout_s: float | None = None

    def read(self, response: httpx.Response) -> AnswerT:
        if response.status_code not in self.accepted:
            raise refusal(response)
        try:
            return self.answer.model_validate_json(response.content)
        except ValidationError:
            raise GatewayError(
                f"gateway answered {response.status_code} with a body that is not a "
                f"{self.answer.__name__}: {response.text[:200]!r}",
                status_code=response.status_code,
            ) from None


def refusal(response: httpx.Response) -> GatewayError:
    """The gateway's own reason for a refusal, in one line (422: each invalid field)."""
    try:
        detail = ErrorAnswer.model_validate_json(response.content).detail
    except ValidationError:
        reason = " ".join(response.text.split())[:200] or "(empty body)"
    else:
        if isinstance(detail, str):
            reason = detail
        else:
            reason = "; ".join(
                f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', '')}"
                for error in detail
            )
    retry_after = _seconds(response.headers.get("Retry-After"))
    if retry_after is not None:
        reason += f" (retry after {retry_after:g} s)"
    return GatewayError(
        f"gateway answered {response.status_code}: {reason[:300]}",
        status_code=response.status_code,
        retry_after_s=retry_after,
    )


def unreachable(base_url: str, error: httpx.HTTPError) -> GatewayError:
    if isinstance(error, httpx.TimeoutException):
        return GatewayError(
            f"the gateway at {base_url} did not answer in time ({type(error).__name__})"
        )
    return GatewayError(
        f"no gateway answers at {base_url} ({type(error).__name__}); is the cluster up?"
    )


def _seconds(value: str | None) -> float | None:
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def submit_call(request: BatchRequest, trace_id: str | None = None) -> Call[BatchAccepted]:
    return Call(
        "POST",
        Paths.BATCHES,
        BatchAccepted,
        accepted=(202,),
        body=request.model_dump(mode="json"),
        headers={TRACE_ID_HEADER: trace_id} if trace_id else None,
    )


def status_call(batch_id: str, wait_s: float = 0.0) -> Call[BatchStatus]:
    """A status read; with ``wait_s`` a long-poll that returns when the batch is done."""
    if wait_s <= 0:
        return Call("GET", Paths.of(Paths.BATCH, batch_id), BatchStatus)
    return Call(
        "GET",
        Paths.of(Paths.BATCH, batch_id),
        BatchStatus,
        params={"wait": round(wait_s, 3)},
        timeout_s=wait_s + LONG_POLL_MARGIN_S,
    )


def latencies_call(batch_id: str) -> Call[BatchLatencies]:
    return Call("GET", Paths.of(Paths.LATENCIES, batch_id), BatchLatencies)


HEALTH = Call("GET", Paths.HEALTH, Health)
READINESS = Call("GET", Paths.READINESS, Readiness, accepted=(200, 503))
INSTANCES = Call("GET", Paths.INSTANCES, Instances)


@dataclass
class LongPoll:
    """When to ask again and when to stop: the waiting both clients share.

    A status read long-polls at most :data:`MAX_WAIT_S` at a time until the batch leaves
    ``running`` or ``timeout_s`` has passed; then the last status is returned, or with
    ``must_finish`` a batch still running is a :class:`BatchUnfinished`. With
    ``retry_unavailable`` a ``503`` (a server briefly away) is retried as its
    ``Retry-After`` asks, until the deadline.
    """

    timeout_s: float
    must_finish: bool = False
    retry_unavailable: bool = False
    deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.timeout_s

    def next_wait_s(self) -> float:
        return max(0.0, min(MAX_WAIT_S, self.deadline - time.monotonic()))

    def settled(self, status: BatchStatus) -> bool:
        if status.status != BatchState.RUNNING:
            return True
        if time.monotonic() < self.deadline:
            return False
        if self.must_finish:
            raise BatchUnfinished(
                f"batch {status.batch_id} still running after {self.timeout_s:.0f}s "
                f"({status.completed + status.failed}/{status.expected} jobs)"
            )
        return True

    def pause_after(self, error: GatewayError) -> float:
        """Seconds to wait before asking again, or ``error`` raised when it is final."""
        if (
            not self.retry_unavailable
            or error.retry_after_s is None
            or time.monotonic() >= self.deadline
        ):
            raise error
        return min(MAX_RETRY_PAUSE_S, error.retry_after_s)


def api_key_of(settings: Settings) -> str | None:
    return settings.api_key.get_secret_value() if settings.api_key else None


def gateway_url_of(settings: Settings) -> str:
    return f"http://{settings.gateway_host}:{settings.gateway_port}"


def _client_options(api_key: str | None, timeout_s: float) -> dict[str, Any]:
    return {
        "headers": {API_KEY_HEADER: api_key} if api_key else {},
        "timeout": timeout_s,
    }


def _request_options(call: Call[Any]) -> dict[str, Any]:
    options: dict[str, Any] = {"params": call.params, "json": call.body, "headers": call.headers}
    if call.timeout_s is not None:
        options["timeout"] = call.timeout_s
    return options


class GatewayClient:
    """The blocking client (the CLI, the launcher)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.base_url, transport=transport, **_client_options(api_key, timeout_s)
        )

    @classmethod
    def for_settings(cls, settings: Settings, *, url: str | None = None, **options: Any) -> Self:
        """The settings' gateway (or ``url``), with their API key."""
        return cls(url or gateway_url_of(settings), api_key=api_key_of(settings), **options)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def call(self, call: Call[AnswerT]) -> AnswerT:
        try:
            response = self.http.request(call.method, call.path, **_request_options(call))
        except httpx.HTTPError as error:
            raise unreachable(self.base_url, error) from error
        return call.read(response)

    def submit(self, request: BatchRequest, *, trace_id: str | None = None) -> BatchAccepted:
        return self.call(submit_call(request, trace_id))

    def status(self, batch_id: str, *, wait_s: float = 0.0) -> BatchStatus:
        return self.call(status_call(batch_id, wait_s))

    def wait(
        self,
        batch_id: str,
        *,
        timeout_s: float,
        must_finish: bool = False,
        retry_unavailable: bool = False,
    ) -> BatchStatus:
        """The batch's status once it is no longer running (see :class:`LongPoll`)."""
        poll = LongPoll(timeout_s, must_finish, retry_unavailable)
        while True:
            try:
                status = self.status(batch_id, wait_s=poll.next_wait_s())
            except GatewayError as error:
                time.sleep(poll.pause_after(error))
                continue
            if poll.settled(status):
                return status

    def run(self, request: BatchRequest, *, timeout_s: float) -> BatchStatus:
        """Submit, then wait until the batch is finished."""
        return self.wait(self.submit(request).batch_id, timeout_s=timeout_s, must_finish=True)

    def latencies(self, batch_id: str) -> BatchLatencies:
        return self.call(latencies_call(batch_id))

    def health(self) -> Health:
        return self.call(HEALTH)

    def readiness(self) -> Readiness:
        """Whether the gateway's broker and Redis answer (a ``503`` is a reply, not an error)."""
        return self.call(READINESS)

    def instances(self) -> Instances:
        return self.call(INSTANCES)


def instances_or_none(
    base_url: str, *, api_key: str | None = None, timeout_s: float = 3.0
) -> Instances | None:
    """The heartbeats and queue depths, or None when the gateway does not answer: a status
    report shows that rather than failing."""
    try:
        with GatewayClient(base_url, api_key=api_key, timeout_s=timeout_s) as client:
            return client.instances()
    except GatewayError:
        return None


class AsyncGatewayClient:
    """The asyncio client (the benchmarks, the soak, the comparison)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_connections: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=KEEPALIVE_EXPIRY_S,
        )
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            transport=transport,
            limits=limits,
            **_client_options(api_key, timeout_s),
        )

    @classmethod
    def for_settings(cls, settings: Settings, *, url: str | None = None, **options: Any) -> Self:
        """The settings' gateway (or ``url``), with their API key."""
        return cls(url or gateway_url_of(settings), api_key=api_key_of(settings), **options)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(self, call: Call[AnswerT]) -> AnswerT:
        try:
            response = await self.http.request(call.method, call.path, **_request_options(call))
        except httpx.HTTPError as error:
            raise unreachable(self.base_url, error) from error
        return call.read(response)

    async def submit(self, request: BatchRequest, *, trace_id: str | None = None) -> BatchAccepted:
        return await self.call(submit_call(request, trace_id))

    async def status(self, batch_id: str, *, wait_s: float = 0.0) -> BatchStatus:
        return await self.call(status_call(batch_id, wait_s))

    async def wait(
        self,
        batch_id: str,
        *,
        timeout_s: float,
        must_finish: bool = False,
        retry_unavailable: bool = False,
    ) -> BatchStatus:
        """The batch's status once it is no longer running (see :class:`LongPoll`)."""
        poll = LongPoll(timeout_s, must_finish, retry_unavailable)
        while True:
            try:
                status = await self.status(batch_id, wait_s=poll.next_wait_s())
            except GatewayError as error:
                await asyncio.sleep(poll.pause_after(error))
                continue
            if poll.settled(status):
                return status

    async def run(self, request: BatchRequest, *, timeout_s: float) -> BatchStatus:
        """Submit, then wait until the batch is finished."""
        accepted = await self.submit(request)
        return await self.wait(accepted.batch_id, timeout_s=timeout_s, must_finish=True)

    async def latencies(self, batch_id: str) -> BatchLatencies:
        return await self.call(latencies_call(batch_id))

    async def health(self) -> Health:
        return await self.call(HEALTH)

    async def readiness(self) -> Readiness:
        """Whether the gateway's broker and Redis answer (a ``503`` is a reply, not an error)."""
        return await self.call(READINESS)

    async def instances(self) -> Instances:
        return await self.call(INSTANCES)
