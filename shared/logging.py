"""One structlog configuration for every service.

JSON lines when output is not a terminal (containers, the launcher's log files), colour
on a terminal. ``service`` and ``instance`` are bound once at start-up; ``job_id``,
``batch_id`` and ``trace_id`` are bound per job through a context variable, so every line
logged while a job is handled carries them without threading parameters.

A worker and the aggregator write a line per job, so a line's fixed cost is paid per job:
the context is one context variable of our own (structlog's ``merge_contextvars`` copies
and scans the whole context for each line), and the timestamp formats the date and time
once per second (structlog's builds a ``datetime`` for each line). The lines are the same.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import structlog

from shared import codec
from shared.settings import LogFormat, Settings

SECRET_KEYS = frozenset({"password", "api_key", "amqp_url", "redis_url", "authorization"})

_service_fields: dict[str, Any] = {}
_job_ids: ContextVar[dict[str, str]] = ContextVar("coord_job_ids", default={})  # noqa: B039


def _merge_context(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The job's ids and the service's fields, under whatever the call itself passed."""
    for key, value in _job_ids.get().items():
        event_dict.setdefault(key, value)
    for key, value in _service_fields.items():
        event_dict.setdefault(key, value)
    return event_dict


class UtcTimestamp:
    """``timestamp`` as structlog's ``TimeStamper(fmt="iso", utc=True)`` writes it
    (``2026-01-02T03:04:05.678901Z``), the date and time formatted once per second."""

    def __init__(self) -> None:
        self.second = -1
        self.prefix = ""

    def __call__(
        self, _: Any, __: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        now = time.time()
        second = int(now)
        micro = round((now - second) * 1e6)
        if micro == 1_000_000:
            second, micro = second + 1, 0
        if second != self.second:
            self.second = second
            self.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        event_dict["timestamp"] = f"{self.prefix}.{micro:06d}Z" if micro else f"{self.prefix}Z"
        return event_dict


def _redact_secrets(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """No secret reaches a log line, whatever a caller passes."""
    for key in SECRET_KEYS.intersection(event_dict):
        event_dict[key] = "***"
    return event_dict


def _json_dumps(obj: Any, default: Any = None) -> str:
    return codec.dumps(obj, default=default).decode()


def _json_output() -> tuple[Any, Any]:
    """The JSON renderer and the logger factory that writes its lines.

    With orjson each line stays bytes from the renderer to ``sys.stdout.buffer``, as
    structlog's performance notes advise: no decode to ``str``, no text-layer encode, and no
    ``print``. Every line is still written and flushed on its own.
    """
    if codec.BACKEND == "orjson" and hasattr(sys.stdout, "buffer"):
        return (
            structlog.processors.JSONRenderer(serializer=codec.dumps),
            structlog.BytesLoggerFactory(file=sys.stdout.buffer),
        )
    return (
        structlog.processors.JSONRenderer(serializer=_json_dumps),
        structlog.PrintLoggerFactory(file=sys.stdout),
    )


def configure_logging(settings: Settings, service: str, **static: Any) -> structlog.BoundLogger:
    """Configure structlog for this process and return the service's logger."""
    level = logging.getLevelNamesMapping()[settings.log_level.upper()]
    as_json = settings.log_format == LogFormat.JSON or (
        settings.log_format == LogFormat.AUTO and not sys.stdout.isatty()
    )
    renderer, logger_factory = (
        _json_output()
        if as_json
        else (
            structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty()),
            structlog.PrintLoggerFactory(file=sys.stdout),
        )
    )
    structlog.configure(
        processors=[
            _merge_context,
            structlog.processors.add_log_level,
            UtcTimestamp(),
            _redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=logger_factory,
        cache_logger_on_first_use=True,
    )
    _service_fields.clear()
    _service_fields.update(service=service, instance=settings.instance, **static)
    _job_ids.set({})
    logger: structlog.BoundLogger = structlog.get_logger()
    return logger


JOB_CONTEXT_KEYS = ("job_id", "batch_id", "trace_id")


@contextmanager
def job_context(**ids: str) -> Iterator[None]:
    """Bind job ids to every log line in this task until the block ends."""
    token = _job_ids.set(_job_ids.get() | {k: v for k, v in ids.items() if v})
    try:
        yield
    finally:
        _job_ids.reset(token)


def context_headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """The job ids in AMQP headers, ready to bind: a message that does not decode may still
    carry them (ours carry their ids in the body)."""
    if not headers:
        return {}
    return {k: str(headers[k]) for k in JOB_CONTEXT_KEYS if headers.get(k)}
