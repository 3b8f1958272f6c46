"""``POST /batches``'s body and trace header, parsed by hand: the same answers and the same
schema as FastAPI's declared parameters gave."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Header
from fastapi.exceptions import RequestValidationError

from services.gateway.app import create_app
from services.gateway.submit_body import batch_request, document_submit, is_json, trace_id
from shared.jobs import BatchRequest, JobKind
from shared.settings import load_settings

JSON = "application/json"


def errors(raised: pytest.ExceptionInfo[RequestValidationError]) -> list[dict[str, Any]]:
    return list(raised.value.errors())


def test_a_valid_body_is_the_batch_request() -> None:
    batch = batch_request(b'{"kind": "cpu", "count": 3, "params": {"n": 500}}', JSON)
    assert (batch.kind, batch.count, batch.params.n) == (JobKind.CPU, 3, 500)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (b'{"kind": "gpu", "count": 1}', ("body", "kind")),
        (b'{"kind": "cpu", "count": 0}', ("body", "count")),
        (b'{"kind": "cpu", "count": 1, "params": {"n": 2000001}}', ("body", "params", "n")),
        (b'{"kind": "io", "count": 1, "extra": 1}', ("body", "extra")),
        (b'{"kind": ', ("body",)),
        (b"", ("body",)),
        (b"[1, 2]", ("body",)),
    ],
)
def test_a_bad_body_is_a_validation_error_under_body(body: bytes, loc: tuple[str, ...]) -> None:
    with pytest.raises(RequestValidationError) as raised:
        batch_request(body, JSON)
    assert loc in [tuple(error["loc"]) for error in errors(raised)]
    assert all("url" not in error for error in errors(raised))


@pytest.mark.parametrize(
    ("content_type", "json"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/vnd.api+json", True),
        (None, False),
        ("text/plain", False),
        ("application/x-www-form-urlencoded", False),
        ("text/json+json", False),
    ],
)
def test_only_a_body_that_says_it_is_json_is_read(content_type: str | None, json: bool) -> None:
    assert is_json(content_type) is json
    if not json:
        with pytest.raises(RequestValidationError) as raised:
            batch_request(b'{"kind": "io", "count": 1}', content_type)
        assert [e["loc"] for e in errors(raised)] == [("header", "content-type")]


def test_the_trace_id_is_optional_and_bounded() -> None:
    assert trace_id({}) is None
    assert trace_id({"x-trace-id": "a" * 64}) == "a" * 64
    with pytest.raises(RequestValidationError) as raised:
        trace_id({"x-trace-id": "a" * 65})
    assert errors(raised)[0]["loc"] == ("header", "x-trace-id")


def test_the_schema_documents_what_declared_parameters_did() -> None:
    """The submit route's body, header and answers, and every component, as a FastAPI
    route declaring ``body: BatchRequest`` and the trace header would document them."""
    reference = FastAPI()

    @reference.post("/batches", status_code=202, responses={401: {}, 503: {}})
    async def submit(
        body: BatchRequest, x_trace_id: Annotated[str | None, Header(max_length=64)] = None
    ) -> None: ...

    expected = reference.openapi()
    actual = create_app(load_settings()).openapi()
    declared, by_hand = expected["paths"]["/batches"]["post"], actual["paths"]["/batches"]["post"]
    assert by_hand["requestBody"] == declared["requestBody"]
    assert by_hand["responses"]["422"] == declared["responses"]["422"]
    ((header,),) = [by_hand["parameters"]]
    assert header["name"] == "x-trace-id" and header["schema"]["maxLength"] == 64
    for name, schema in expected["components"]["schemas"].items():
        assert actual["components"]["schemas"][name] == schema, name


def test_the_schema_is_built_once() -> None:
    app = FastAPI()
    document_submit(app)
    assert app.openapi() is app.openapi()
    assert "BatchRequest" in app.openapi()["components"]["schemas"]
