"""The runner's refusals, which need no cluster: each is one line and exit code 1."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadtests.run", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", ["headless", "ui"])
def test_no_cluster_is_one_line(command: str, tmp_path) -> None:
    host = f"http://127.0.0.1:{closed_port()}"
    result = run(
        command, "--host", host, *(["--reports", str(tmp_path)] if command == "headless" else [])
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert f"no cluster answers at {host}" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "reason"),
    [(["--mix", "gpu"], "unknown job kind"), (["--run-time", "soon"], "is not like 30s")],
)
def test_bad_option_is_one_line(args: list[str], reason: str) -> None:
    result = run("headless", "--host", "http://127.0.0.1:9", *args)
    assert result.returncode == 1
    assert reason in result.stderr and result.stderr.strip().count("\n") == 0
