"""What a job and its result are, their hard limits, and how they cross the wire.

The gateway validates requests with the pydantic models; workers and the aggregator
decode the compact wire form with :func:`decode_job` / :func:`decode_result`, which
raise :class:`InvalidMessage` so a bad message can be dead-lettered instead of crashing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared import codec

MAX_BATCH = 100_000
MAX_N = 2_000_000
MAX_IO_MS = 10_000
DEFAULT_N = 10_000
DEFAULT_IO_MS = 50

MAX_RESULT_VALUE = MAX_N
"""No job's result exceeds it (a prime count below n, or io_ms): a batch's sum of at most
MAX_BATCH of them stays far inside Redis's 64-bit integers."""
MAX_ID_LENGTH = 128
MAX_TIMESTAMP = 1e11
MAX_ATTEMPTS_FIELD = 1000
MAX_DURATIONS = 16


T = TypeVar("T")


class JobKind(StrEnum):
    CPU = "cpu"
    IO = "io"
    MIXED = "mixed"


class InvalidMessage(ValueError):
    """A message that can never be processed: it goes to the dead-letter queue at once."""


class JobParams(BaseModel):
    """Parameters of every job of a batch; each has a hard bound."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(default=DEFAULT_N, ge=2, le=MAX_N, description="cpu/mixed: count primes below n")
    io_ms: int = Field(
        default=DEFAULT_IO_MS, ge=0, le=MAX_IO_MS, description="io/mixed: milliseconds to wait"
    )


class BatchRequest(BaseModel):
    """Body of ``POST /batches``."""

    model_config = ConfigDict(extra="forbid")

    kind: JobKind
    count: int = Field(ge=1, le=MAX_BATCH)
    params: JobParams = Field(default_factory=JobParams)

    @model_validator(mode="after")
    def _bounded_total_work(self) -> BatchRequest:
        """Bound the whole batch too, so no request occupies the cluster for hours."""
        if self.kind != JobKind.IO and self.count * self.params.n > 20_000_000_000:
            raise ValueError("count * n exceeds 2e10: split the batch or lower n")
        return self


@dataclass(slots=True)
class Job:
    job_id: str
    batch_id: str
    kind: JobKind
    n: int
    io_ms: int
    submitted_at: float
    attempt: int = 1
    trace_id: str = ""
    deferrals: int = 0

    def encode(self) -> bytes:
        return codec.dumps_dataclass(self)


@dataclass(slots=True)
class Result:
    job_id: str
    batch_id: str
    kind: JobKind
    ok: bool
    value: int
    submitted_at: float
    finished_at: float
    worker: str
    attempts: int = 1
    error: str | None = None
    durations_ms: dict[str, float] = field(default_factory=dict)
    trace_id: str = ""

    def encode(self) -> bytes:
        return codec.dumps_dataclass(self)


def _load(body: bytes) -> dict[str, Any]:
    try:
        data = codec.loads(body)
    except codec.DecodeError as exc:
        raise InvalidMessage(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidMessage("not a JSON object")
    return data


def _field(data: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in data:
        raise InvalidMessage(f"missing field {name!r}")
    value = data[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise InvalidMessage(f"field {name!r} has the wrong type")
    return value


def _bounded_int(
    data: dict[str, Any], name: str, low: int, high: int, default: int | None = None
) -> int:
    value = _field(data, name, int) if default is None else data.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidMessage(f"field {name!r} is not an integer in {low}..{high}")
    return value


def _timestamp(data: dict[str, Any], name: str) -> float:
    value = float(_field(data, name, (int, float)))
    if not 0 <= value <= MAX_TIMESTAMP:
        raise InvalidMessage(f"field {name!r} is not a timestamp")
    return value


def _short_str(data: dict[str, Any], name: str, default: str | None = None) -> str:
    value = _field(data, name, str) if default is None else data.get(name, default)
    if not isinstance(value, str) or len(value) > MAX_ID_LENGTH:
        raise InvalidMessage(f"field {name!r} is not a string of at most {MAX_ID_LENGTH}")
    return value


def _durations(data: dict[str, Any]) -> dict[str, float]:
    raw = data.get("durations_ms") or {}
    if not isinstance(raw, dict) or len(raw) > MAX_DURATIONS:
        raise InvalidMessage("field 'durations_ms' is not a small object")
    durations = {str(k): float(v) for k, v in raw.items()}
    if not all(0 <= v <= MAX_TIMESTAMP for v in durations.values()):
        raise InvalidMessage("field 'durations_ms' holds a duration out of bounds")
    return durations


def _kind(data: dict[str, Any]) -> JobKind:
    raw = _field(data, "kind", str)
    try:
        return JobKind(raw)
    except ValueError:
        raise InvalidMessage(f"unknown kind {raw!r}") from None


def _strictly(decode: Callable[[bytes], T], body: bytes) -> T:
    """Any conversion error in a message is that message's fault: make it InvalidMessage,
    so it is dead-lettered instead of redelivered for ever."""
    try:
        return decode(body)
    except InvalidMessage:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidMessage(f"malformed message: {exc}") from None


def decode_job(body: bytes) -> Job:
    return _strictly(_decode_job, body)


def decode_result(body: bytes) -> Result:
    return _strictly(_decode_result, body)


def _decode_job(body: bytes) -> Job:
    data = _load(body)
    n = _field(data, "n", int)
    io_ms = _field(data, "io_ms", int)
    if not 2 <= n <= MAX_N or not 0 <= io_ms <= MAX_IO_MS:
        raise InvalidMessage("parameter out of bounds")
    return Job(
        job_id=_field(data, "job_id", str),
        batch_id=_field(data, "batch_id", str),
        kind=_kind(data),
        n=n,
        io_ms=io_ms,
        submitted_at=float(_field(data, "submitted_at", (int, float))),
        attempt=int(data.get("attempt", 1)),
        deferrals=int(data.get("deferrals", 0)),
        trace_id=str(data.get("trace_id", "")),
    )


def _decode_result(body: bytes) -> Result:
    """Every field bounded: the fold script gets only values Redis can add up."""
    data = _load(body)
    error = data.get("error")
    if error is not None and not isinstance(error, str):
        raise InvalidMessage("field 'error' has the wrong type")
    return Result(
        job_id=_short_str(data, "job_id"),
        batch_id=_short_str(data, "batch_id"),
        kind=_kind(data),
        ok=_field(data, "ok", bool),
        value=_bounded_int(data, "value", 0, MAX_RESULT_VALUE),
        submitted_at=_timestamp(data, "submitted_at"),
        finished_at=_timestamp(data, "finished_at"),
        worker=_short_str(data, "worker", default=""),
        attempts=_bounded_int(data, "attempts", 0, MAX_ATTEMPTS_FIELD, default=1),
        error=error,
        durations_ms=_durations(data),
        trace_id=str(data.get("trace_id", "")),
    )
