"""``POST /batches``'s body and trace header, parsed by hand on the hot path.

Declared as FastAPI parameters, the body and the header cost the gateway about 70 µs a
request in FastAPI's dependency solving: the content type parsed with ``email.message``,
the JSON decoded into Python objects and validated again from them, the query string
parsed for nothing. ``BatchRequest.model_validate_json`` validates straight from the bytes.
What a client sees does not change: a bad body or header gets the same ``422`` with each
error's ``loc``, and the OpenAPI schema describes the same body and header
(:func:`document_submit`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from shared.jobs import BatchRequest

TRACE_HEADER = "x-trace-id"
TRACE_ID_MAX = 64
COMPONENTS = "#/components/schemas/{model}"

SUBMIT_OPENAPI: dict[str, Any] = {
    "parameters": [
        {
            "name": TRACE_HEADER,
            "in": "header",
            "required": False,
            "schema": {"type": "string", "maxLength": TRACE_ID_MAX, "title": "X-Trace-Id"},
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": COMPONENTS.format(model="BatchRequest")}}
        },
    },
}
"""What FastAPI would have documented for ``body: BatchRequest`` and the trace header."""

SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {},
    422: {
        "description": "Validation Error",
        "content": {
            "application/json": {"schema": {"$ref": COMPONENTS.format(model="HTTPValidationError")}}
        },
    },
    503: {"description": "broker, Redis or backlog limit"},
}
"""The answers besides ``202``; FastAPI documents a ``422`` only for declared parameters."""


def is_json(content_type: str | None) -> bool:
    """``application/json`` or ``application/<anything>+json``, parameters aside."""
    kind = (content_type or "").partition(";")[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def batch_request(body: bytes, content_type: str | None) -> BatchRequest:
    """The validated body; a ``422`` as FastAPI words it (``loc`` under ``body``) if not.

    A body that does not say it is JSON is refused, as FastAPI's strict content type does,
    so a browser's plain form post elsewhere cannot submit a batch."""
    if not is_json(content_type):
        raise RequestValidationError(
            [
                {
                    "type": "content_type",
                    "loc": ("header", "content-type"),
                    "msg": "the body must be JSON, sent with Content-Type: application/json",
                    "input": content_type,
                }
            ]
        )
    try:
        return BatchRequest.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)],
            body=body,
        ) from None


def trace_id(headers: Mapping[str, str]) -> str | None:
    """The client's trace id, at most ``TRACE_ID_MAX`` characters."""
    value = headers.get(TRACE_HEADER)
    if value is not None and len(value) > TRACE_ID_MAX:
        raise RequestValidationError(
            [
                {
                    "type": "string_too_long",
                    "loc": ("header", TRACE_HEADER),
                    "msg": f"String should have at most {TRACE_ID_MAX} characters",
                    "input": value,
                    "ctx": {"max_length": TRACE_ID_MAX},
                }
            ]
        )
    return value


def document_submit(app: FastAPI) -> None:
    """Add ``BatchRequest`` and the models it holds to the app's schema components, which
    FastAPI adds only for the models its routes declare."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            body = BatchRequest.model_json_schema(ref_template=COMPONENTS)
            for name, model in body.pop("$defs", {}).items():
                components.setdefault(name, model)
            components.setdefault("BatchRequest", body)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
