from dataclasses import asdict

import pytest

from shared import codec
from shared.jobs import JobKind, Result

SAMPLE = {"job_id": "a.1", "kind": "cpu", "n": 10_000, "ok": True, "error": None, "x": 0.25}


@pytest.fixture(params=["orjson", "json"])
def backend(request, monkeypatch):
    """Both backends, whichever is installed: the free-threaded build has no orjson."""
    monkeypatch.setattr(codec, "BACKEND", request.param)
    return request.param


def test_round_trip(backend):
    assert codec.loads(codec.dumps(SAMPLE)) == SAMPLE


def test_both_backends_write_the_same_compact_bytes(monkeypatch):
    monkeypatch.setattr(codec, "BACKEND", "json")
    with_json = codec.dumps({**SAMPLE, "name": "héllo"})
    monkeypatch.setattr(codec, "BACKEND", "orjson")
    assert codec.dumps({**SAMPLE, "name": "héllo"}) == with_json


def test_bad_json_raises_decode_error(backend):
    with pytest.raises(codec.DecodeError):
        codec.loads(b"{not json")


def test_default_serializes_unknown_types(backend):
    assert codec.loads(codec.dumps({"path": object()}, default=lambda _: "?")) == {"path": "?"}


def test_a_dataclass_is_written_alike_by_both_backends(monkeypatch):
    result = Result(
        job_id="b.1",
        batch_id="b",
        kind=JobKind.IO,
        ok=True,
        value=3,
        submitted_at=1.5,
        finished_at=2.25,
        worker="w-1",
        durations_ms={"io_ms": 0.5},
        trace_id="t",
    )
    monkeypatch.setattr(codec, "BACKEND", "json")
    with_json = codec.dumps_dataclass(result)
    monkeypatch.setattr(codec, "BACKEND", "orjson")
    assert codec.dumps_dataclass(result) == with_json == codec.dumps(asdict(result))
