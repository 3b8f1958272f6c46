"""Workers under the free-threaded build give the known answers, in threads and subinterpreters.

Runs whenever ``make python-ft`` has built the interpreter (``make test`` builds it through
deploy/prereqs/install.sh, so CI runs it); the gateway and the aggregator stay on this one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import httpx
import pytest

from coordctl.local import ClusterState, start_local_cluster, stop_local_cluster
from coordctl.runtimes.runtime import BUILD_HINT, ft_available, resolve_runtime
from shared.settings import Settings, WorkerMode
from tests.e2e.conftest import run_batch

pytestmark = pytest.mark.skipif(not ft_available(), reason=f"no free-threaded build: {BUILD_HINT}")


@pytest.fixture
def cluster_under(settings: Settings) -> Iterator[object]:
    started = []

    def start(runtime: str, mode: WorkerMode) -> ClusterState:
        chosen = resolve_runtime(runtime)
        started.append(settings.run_dir)
        return start_local_cluster(
            settings,
            workers=1,
            mode=mode,
            pool_size=2,
            python=sys.executable,
            worker_python=chosen.python,
            worker_env=chosen.env,
        )

    try:
        yield start
    finally:
        for run_dir in started:
            stop_local_cluster(run_dir, timeout_s=15)


def worker_beat(gateway_url: str) -> dict[str, object]:
    instances = httpx.get(f"{gateway_url}/instances", timeout=5).json()["instances"]
    return next(i for i in instances if i["service"] == "worker")


@pytest.mark.parametrize(
    ("runtime", "mode", "gil"),
    [
        ("ft", WorkerMode.THREADS, False),
        ("ft-gil", WorkerMode.THREADS, True),
        ("ft-gil", WorkerMode.INTERPRETERS, True),
        ("ft", WorkerMode.INTERPRETERS, False),
    ],
)
def test_workers_under_the_free_threaded_build_give_the_known_answers(
    cluster_under, runtime: str, mode: WorkerMode, gil: bool
) -> None:
    cluster = cluster_under(runtime, mode)
    beat = worker_beat(cluster.gateway_url)
    assert str(beat["python"]).endswith("t")
    assert (beat["gil"], beat["mode"]) == (gil, mode.value)
    cpu = run_batch(cluster.gateway_url, "cpu", 8, n=10_000)
    assert (cpu["completed"], cpu["failed"], cpu["result"]["sum"]) == (8, 0, 8 * 1229)
    mixed = run_batch(cluster.gateway_url, "mixed", 4, n=10_000, io_ms=20)
    assert (mixed["completed"], mixed["result"]["sum"]) == (4, 4 * 1229)
    gateway = next(
        i
        for i in httpx.get(f"{cluster.gateway_url}/instances", timeout=5).json()["instances"]
        if i["service"] == "gateway"
    )
    assert gateway["python"] == ".".join(map(str, sys.version_info[:3]))
