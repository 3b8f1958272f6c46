import orjson
import pytest
from pydantic import ValidationError

from shared.jobs import (
    MAX_IO_MS,
    MAX_N,
    BatchRequest,
    InvalidMessage,
    Job,
    JobKind,
    Result,
    decode_job,
    decode_result,
)


def make_job(**changes: object) -> Job:
    fields: dict[str, object] = dict(
        job_id="b.1", batch_id="b", kind=JobKind.CPU, n=10_000, io_ms=5, submitted_at=1.5
    )
    fields.update(changes)
    return Job(**fields)  # type: ignore[arg-type]


def test_job_round_trips_through_the_wire() -> None:
    job = make_job(attempt=2, trace_id="t")
    assert decode_job(job.encode()) == job


def test_result_round_trips_through_the_wire() -> None:
    result = Result(
        job_id="b.1",
        batch_id="b",
        kind=JobKind.IO,
        ok=True,
        value=5,
        submitted_at=1.0,
        finished_at=2.0,
        worker="w",
        durations_ms={"io": 5.1},
    )
    assert decode_result(result.encode()) == result


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (orjson.dumps({"batch_id": "b"}), "missing field"),
        (orjson.dumps({**orjson.loads(make_job().encode()), "kind": "gpu"}), "unknown kind"),
        (orjson.dumps({**orjson.loads(make_job().encode()), "n": "10"}), "wrong type"),
        (orjson.dumps({**orjson.loads(make_job().encode()), "n": True}), "wrong type"),
        (orjson.dumps({**orjson.loads(make_job().encode()), "n": MAX_N + 1}), "out of bounds"),
    ],
)
def test_decode_job_rejects_what_can_never_be_processed(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidMessage, match=reason):
        decode_job(body)


def test_batch_request_defaults_and_bounds() -> None:
    request = BatchRequest.model_validate({"kind": "io", "count": 3})
    assert request.params.io_ms >= 0
    with pytest.raises(ValidationError, match="count"):
        BatchRequest.model_validate({"kind": "cpu", "count": 0})
    with pytest.raises(ValidationError, match="io_ms"):
        BatchRequest.model_validate({"kind": "io", "count": 1, "params": {"io_ms": MAX_IO_MS + 1}})
    with pytest.raises(ValidationError, match="extra"):
        BatchRequest.model_validate({"kind": "io", "count": 1, "surprise": 1})


def test_batch_request_bounds_the_whole_batch() -> None:
    with pytest.raises(ValidationError, match="exceeds"):
        BatchRequest.model_validate({"kind": "cpu", "count": 100_000, "params": {"n": MAX_N}})


def test_a_field_of_the_wrong_shape_is_an_invalid_message() -> None:
    body = (
        Job("j", "b", JobKind.CPU, 100, 0, 0.0).encode().replace(b'"attempt":1', b'"attempt":"x"')
    )
    with pytest.raises(InvalidMessage):
        decode_job(body)


def test_deferrals_survive_the_round_trip() -> None:
    job = Job("j", "b", JobKind.IO, 2, 0, 0.0, deferrals=3)
    assert decode_job(job.encode()).deferrals == 3


def result_body(**changes: object) -> bytes:
    fields = orjson.loads(Result("b.1", "b", JobKind.CPU, True, 1229, 1.0, 2.0, "w").encode())
    return orjson.dumps({**fields, **changes})


@pytest.mark.parametrize(
    "body",
    [
        result_body(value=2**63),
        result_body(value=2**64 - 1),
        b'{"job_id":"b.1","batch_id":"b","kind":"cpu","ok":true,"value":'
        + str(10**40).encode()
        + b',"submitted_at":1.0,"finished_at":2.0}',
        result_body(value=-1),
        result_body(value=MAX_N + 1),
        result_body(value=1.5),
        result_body(submitted_at=1e300),
        result_body(finished_at=-1.0),
        result_body(attempts=2**63),
        result_body(worker="w" * 10_000),
        result_body(job_id="j" * 10_000),
        result_body(durations_ms={"cpu": 1e300}),
        result_body(durations_ms={str(i): 1.0 for i in range(1000)}),
        result_body(error=42),
    ],
)
def test_decode_result_bounds_every_field(body: bytes) -> None:
    """Each of these would reach the fold script; 2**63 made its HINCRBY fail halfway."""
    with pytest.raises(InvalidMessage):
        decode_result(body)


def test_decode_result_accepts_the_largest_possible_result() -> None:
    assert decode_result(result_body(value=MAX_N)).value == MAX_N
