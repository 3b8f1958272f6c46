"""`cluster submit` against a gateway that answers errors: one line, never a traceback.

The gateway here is a plain HTTP server in a thread that answers as the real one does on a
lost batch (404) or an unreachable state store (503), so no cluster is needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

CLUSTER = str(Path(sys.executable).with_name("cluster"))
BATCH_ID = "0" * 32


def gateway(status_code: int, body: bytes) -> type[BaseHTTPRequestHandler]:
    """Accepts every batch, then answers every status read with ``status_code``/``body``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.answer(202, json.dumps({"batch_id": BATCH_ID, "status": "running"}).encode())

        def do_GET(self) -> None:
            self.answer(status_code, body)

        def answer(self, code: int, payload: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
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


@pytest.mark.parametrize(
    ("code", "body", "expected"),
    [
        (404, b'{"detail": "no batch 000"}', "gateway answered 404"),
        (503, b'{"detail": "state store unreachable"}', "gateway answered 503"),
        (200, b"[1, 2]", "not a JSON object"),
        (502, b"<html>bad gateway</html>", "gateway answered 502"),
    ],
)
def test_submit_error_is_one_line(
    serve: list[ThreadingHTTPServer], code: int, body: bytes, expected: str
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), gateway(code, body))
    serve.append(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    done = subprocess.run(
        [CLUSTER, "submit", "--count", "1", "--wait", "5", "--url", url],
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert expected in done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr
