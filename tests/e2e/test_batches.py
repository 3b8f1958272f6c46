"""Every job kind in every worker mode, through the real gateway, workers and aggregator."""

from __future__ import annotations

import sys

import pytest

from shared.primes import count_primes
from shared.settings import WorkerMode
from tests.conftest import ClusterFactory
from tests.e2e.conftest import run_batch

PRIMES_BELOW_10000 = 1229
MODES = [
    pytest.param(
        mode,
        marks=pytest.mark.skipif(
            mode == WorkerMode.INTERPRETERS and sys.version_info < (3, 12),
            reason="needs Python 3.12+; tests/e2e/test_runtimes.py runs it under 3.13t",
        ),
    )
    for mode in WorkerMode
]


@pytest.mark.parametrize("mode", MODES)
def test_each_kind_gives_its_known_sum(start_cluster: ClusterFactory, mode: WorkerMode) -> None:
    cluster = start_cluster(workers=2, mode=mode, pool_size=2)
    url = cluster.gateway_url

    cpu = run_batch(url, "cpu", 100, n=10_000)
    assert (cpu["completed"], cpu["failed"]) == (100, 0)
    assert cpu["result"] == {"sum": 122_900, "min": 1229, "max": 1229}

    io = run_batch(url, "io", 200, io_ms=5)
    assert (io["completed"], io["result"]["sum"]) == (200, 1000)

    mixed = run_batch(url, "mixed", 20, n=5_000, io_ms=2)
    assert (mixed["completed"], mixed["result"]["sum"]) == (20, 20 * count_primes(5_000))

    for batch in (cpu, io, mixed):
        latency = batch["latency_ms"]
        assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]


def test_batch_spreads_over_every_worker(start_cluster: ClusterFactory) -> None:
    cluster = start_cluster(workers=2, mode=WorkerMode.BLOCKING)
    batch = run_batch(cluster.gateway_url, "io", 400, io_ms=20)
    assert batch["completed"] == 400
    assert set(batch["workers"]) == {"worker-1", "worker-2"}
