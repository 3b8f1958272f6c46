"""The client's pure parts: reading a refusal, and when a long-poll asks again."""

import time

import httpx
import pytest

from coordctl.client import GatewayError, LongPoll, refusal


@pytest.mark.parametrize(
    ("status", "body", "headers", "reason", "retry_after"),
    [
        (404, b'{"detail": "no batch x"}', {}, "gateway answered 404: no batch x", None),
        (
            503,
            b'{"detail": "state store unreachable"}',
            {"Retry-After": "2"},
            "gateway answered 503: state store unreachable (retry after 2 s)",
            2.0,
        ),
        (
            422,
            b'{"detail": [{"loc": ["body", "params", "n"], "msg": "too big"},'
            b' {"loc": ["query", "wait"], "msg": "at most 60"}]}',
            {},
            "gateway answered 422: body.params.n: too big; query.wait: at most 60",
            None,
        ),
        (502, b"<p>bad\n  gateway</p>", {}, "gateway answered 502: <p>bad gateway</p>", None),
        (500, b"", {"Retry-After": "soon"}, "gateway answered 500: (empty body)", None),
    ],
)
def test_a_refusal_is_the_gateways_reason_in_one_line(
    status: int, body: bytes, headers: dict[str, str], reason: str, retry_after: float | None
) -> None:
    error = refusal(httpx.Response(status, content=body, headers=headers))
    assert (str(error), error.status_code, error.retry_after_s) == (reason, status, retry_after)


def test_a_long_poll_asks_for_at_most_a_minute_and_stops_at_its_deadline() -> None:
    poll = LongPoll(timeout_s=600)
    assert poll.next_wait_s() == 60
    poll.deadline = time.monotonic() - 1
    assert poll.next_wait_s() == 0


def test_unavailable_is_retried_only_when_asked_and_before_the_deadline() -> None:
    unavailable = GatewayError("gateway answered 503", status_code=503, retry_after_s=2)
    lost = GatewayError("gateway answered 404", status_code=404)
    patient = LongPoll(timeout_s=30, retry_unavailable=True)
    assert patient.pause_after(unavailable) == 1.0
    with pytest.raises(GatewayError, match="404"):
        patient.pause_after(lost)
    with pytest.raises(GatewayError, match="503"):
        LongPoll(timeout_s=30).pause_after(unavailable)
    patient.deadline = time.monotonic() - 1
    with pytest.raises(GatewayError, match="503"):
        patient.pause_after(unavailable)
