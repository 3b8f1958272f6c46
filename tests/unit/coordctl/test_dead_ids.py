"""A dead letter's ids: from its headers when it has them, else from its JSON body."""

from __future__ import annotations

from coordctl.dead import letter_ids


def test_headers_win_when_present() -> None:
    assert letter_ids({"job_id": "j1", "x-death": []}, b'{"job_id": "other"}') == {"job_id": "j1"}


def test_a_job_body_gives_its_ids() -> None:
    body = b'{"job_id": "b.3", "batch_id": "b", "kind": "io", "trace_id": "t"}'
    assert letter_ids({}, body) == {"job_id": "b.3", "batch_id": "b", "trace_id": "t"}


def test_a_body_that_is_not_a_json_object_gives_none() -> None:
    assert letter_ids({}, b"\xff not json") == {}
    assert letter_ids({}, b"[1, 2]") == {}
    assert letter_ids({}, b'{"job_id": 7}') == {}
