"""`cluster submit` against a gateway that answers errors: one line, never a traceback.

The gateway here is a plain HTTP server in a thread that answers as the real one does on a
refused batch (401, 422, 503 with Retry-After), a lost batch (404) or an unreachable state
store (503), so no cluster is needed. Its accepted answer is the real contract's model.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from coordctl.servers import free_port
from shared.api import BatchAccepted, BatchState
from shared.jobs import JobKind

CLUSTER = str(Path(sys.executable).with_name("cluster"))
BATCH_ID = "0" * 32
ACCEPTED = BatchAccepted(
    batch_id=BATCH_ID,
    kind=JobKind.CPU,
    expected=1,
    status=BatchState.RUNNING,
    status_url=f"/batches/{BATCH_ID}",
    trace_id="t",
    publish_ms=1.0,
).model_dump_json()
Answer = tuple[int, bytes, dict[str, str]]


def gateway(post: Answer, get: Answer) -> type[BaseHTTPRequestHandler]:
    """Answers every submit with ``post`` and every status read with ``get``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.answer(*post)

        def do_GET(self) -> None:
            self.answer(*get)

        def answer(self, code: int, payload: bytes, headers: dict[str, str]) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_: object) -> None:
            pass

    return Handler


@pytest.fixture
def serve() -> Iterator[list[ThreadingHTTPServer]]:
    servers: list[ThreadingHTTPServer] = []
    yield servers
    for server in servers:
        server.shutdown()
        server.server_close()


def run_submit(url: str, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLUSTER, "submit", "--count", "1", "--wait", "5", "--url", url, *options],
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], expected: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert expected in done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr


ACCEPT: Answer = (202, ACCEPTED.encode(), {})


@pytest.mark.parametrize(
    ("post", "get", "expected"),
    [
        (ACCEPT, (404, b'{"detail": "no batch 000"}', {}), "gateway answered 404: no batch 000"),
        (
            ACCEPT,
            (503, b'{"detail": "state store unreachable"}', {"Retry-After": "2"}),
            "gateway answered 503: state store unreachable (retry after 2 s)",
        ),
        (ACCEPT, (200, b"[1, 2]", {}), "with a body that is not a BatchStatus"),
        (ACCEPT, (502, b"<html>bad\ngateway</html>", {}), "gateway answered 502: <html>bad"),
        (
            (401, b'{"detail": "missing or wrong X-API-Key header"}', {}),
            ACCEPT,
            "gateway answered 401: missing or wrong X-API-Key header",
        ),
        (
            (
                422,
                b'{"detail": [{"loc": ["body", "count"], "msg": "too many", "type": "x"}]}',
                {},
            ),
            ACCEPT,
            "gateway answered 422: body.count: too many",
        ),
        ((202, b'{"batch_id": 1}', {}), ACCEPT, "with a body that is not a BatchAccepted"),
    ],
)
def test_submit_error_is_one_line(
    serve: list[ThreadingHTTPServer], post: Answer, get: Answer, expected: str
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), gateway(post, get))
    serve.append(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    assert_one_line_error(run_submit(f"http://127.0.0.1:{server.server_address[1]}"), expected)


def test_no_gateway_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert_one_line_error(run_submit(url), f"no gateway answers at {url} (ConnectError)")


def test_a_bad_batch_is_refused_before_sending() -> None:
    done = run_submit(f"http://127.0.0.1:{free_port()}", "--n", "1")
    assert_one_line_error(done, "bad batch: --n: Input should be greater than or equal to 2")
