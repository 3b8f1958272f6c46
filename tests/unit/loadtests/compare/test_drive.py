import os

import pytest

from loadtests.compare.drive import cpu_percent, cpu_seconds, lag_summaries
from shared.heartbeat import LoopLag, WorkerBeat
from shared.looplag import lag_bucket


def beat(histogram: dict[float, int]) -> WorkerBeat:
    counts = {str(lag_bucket(ms)): n for ms, n in histogram.items()}
    return WorkerBeat(instance="worker", loop_lag_ms=LoopLag(histogram=counts))


def test_lag_over_the_window_comes_from_the_heartbeats_on_either_side() -> None:
    before = {"worker-1": beat({0.1: 500}), "worker-2": beat({0.1: 500})}
    after = {
        "worker-1": beat({0.1: 500, 100.0: 100}),
        "worker-2": beat({0.1: 600}),
    }
    together, per_worker = lag_summaries(before, after)
    assert per_worker["worker-1"].samples == 100
    assert per_worker["worker-1"].p50 == pytest.approx(100.0, rel=0.05)
    assert per_worker["worker-2"].p99 == pytest.approx(0.1, rel=0.05)
    assert together.samples == 200
    assert together.max == pytest.approx(100.0, rel=0.05)


def test_a_worker_without_an_earlier_heartbeat_counts_from_its_start() -> None:
    _, per_worker = lag_summaries({}, {"worker-1": beat({2.0: 10})})
    assert per_worker["worker-1"].samples == 10


def test_cpu_of_this_process_in_percent_of_a_core() -> None:
    assert set(cpu_seconds({"me": os.getpid()}, pools=False)) == {"me"}
    # Earlier tests may have left children (multiprocessing's resource tracker).
    assert set(cpu_seconds({"me": os.getpid()})) <= {"me", "me pool"}
    assert cpu_percent({"me": 1.0}, {"me": 1.5}, 2.0) == {"me": 25.0}
    assert cpu_seconds({"gone": 2**22 + 12345}) == {}
