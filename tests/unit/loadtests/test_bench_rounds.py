"""make bench's arithmetic: CPU µs per job, alternating orders and medians over rounds."""

from __future__ import annotations

import os

from loadtests.bench.__main__ import summarize, worker_orders
from loadtests.bench.cpu import CpuMeter, cpu_seconds


def test_cpu_per_job_is_each_process_share_in_microseconds_with_a_total() -> None:
    spent = CpuMeter.per_job_us(
        {"worker": 1.0, "broker": 2.0}, {"worker": 1.5, "broker": 2.1}, 1000
    )
    assert spent == {"worker": 500.0, "broker": 100.0, "total": 600.0}


def test_a_process_reads_its_own_cpu_time_and_a_gone_one_reads_zero() -> None:
    assert cpu_seconds(os.getpid(), children=False) > 0
    assert cpu_seconds(2**22 + 12345) == 0.0


def test_worker_counts_swap_order_every_round() -> None:
    assert list(worker_orders(3)) == [(1, 2), (2, 1), (1, 2)]


def test_the_figures_are_medians_over_rounds() -> None:
    def round_(ceiling: float, one: float, two: float) -> dict[str, object]:
        cpu = {"total": ceiling}
        return {
            "ceiling": {"jobs_s": ceiling, "cpu_us": cpu},
            "cluster": {"1": {"jobs_s": one, "cpu_us": cpu}, "2": {"jobs_s": two, "cpu_us": cpu}},
            "ratio": max(one, two) / ceiling,
        }

    rounds = [round_(1000, 500, 600), round_(1200, 700, 600), round_(900, 800, 850)]
    summary = summarize(rounds)
    assert summary["ceiling_jobs_s"] == 1000
    assert summary["cluster_jobs_s"] == {"1": 700, "2": 600}
    assert summary["ratio"] == 0.6  # the rounds: 0.6, 0.583, 0.944
    assert summary["best_workers"] == 1
    assert summary["two_ge_one_rounds"] == 2
    assert summary["cpu_us"]["ceiling"] == {"total": 1000}
