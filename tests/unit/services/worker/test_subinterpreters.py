"""The ``interpreters`` worker mode where this Python has no subinterpreters (3.11)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from services.worker.executors import CpuRunner
from services.worker.subinterpreters import ModeUnavailable, interpreter_pool
from shared.settings import WorkerMode

pytestmark = pytest.mark.skipif(
    sys.version_info >= (3, 12), reason="this Python may have subinterpreters"
)


def test_the_pool_says_which_python_is_needed_and_how_to_get_it() -> None:
    with pytest.raises(ModeUnavailable, match=r"needs Python 3\.12\+.*make python-ft"):
        interpreter_pool(2)


def test_the_runner_refuses_the_mode_at_construction() -> None:
    with pytest.raises(ModeUnavailable):
        CpuRunner(WorkerMode.INTERPRETERS, 2)


def test_a_worker_in_that_mode_exits_at_start_up_with_one_line() -> None:
    env = {
        **os.environ,
        "COORD_WORKER_MODE": "interpreters",
        "COORD_METRICS_PORT": "0",
        "COORD_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/",
        "COORD_REDIS_URL": "redis://127.0.0.1:1/0",
    }
    worker = subprocess.run(
        [sys.executable, "-m", "services.worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert worker.returncode == 1
    lines = worker.stderr.strip().splitlines()
    assert len(lines) == 1, worker.stderr
    assert lines[0].startswith("worker: worker mode 'interpreters' needs Python 3.12+")
