"""Whether a latency round's slowest jobs met a saturated machine: the split, its summary,
and the sampler on the real machine."""

from __future__ import annotations

import time
from collections import namedtuple
from pathlib import Path

import orjson

from loadtests.bench.headroom import (
    BusySample,
    CpuBusySampler,
    busy_shares,
    busy_summary,
    headroom_lines,
    headroom_split,
    median_headroom,
    read_cluster_run,
    samples_of,
    saturated_spans,
)
from loadtests.bench.hops import JobHops

T0 = 1_800_000_000.0


def job(published_s: float, total_ms: float) -> JobHops:
    return JobHops(T0 + published_s, (0.0, 0.0, 0.0, 0.0, total_ms))


def samples(*busy: float) -> list[BusySample]:
    """One sample per 100 ms from T0 + 0.1 s, each covering the 100 ms before it."""
    return [BusySample(T0 + 0.1 * i, T0 + 0.1 * (i + 1), b, 0.0) for i, b in enumerate(busy)]


def test_saturated_samples_that_touch_merge_into_one_stretch() -> None:
    spans = saturated_spans(samples(0.5, 0.97, 1.0, 0.4, 0.96))
    assert [(round(a - T0, 2), round(b - T0, 2)) for a, b in spans] == [(0.1, 0.3), (0.4, 0.5)]
    assert saturated_spans(samples(0.5, 0.94)) == []


def test_the_tail_that_met_a_saturated_machine_is_told_apart() -> None:
    # 200 jobs of 10 ms over 0.0-0.5 s; the three slowest (50 ms) fly through 0.25-0.3 s,
    # the only saturated stretch (samples 3, covering 0.2-0.3 s).
    jobs = [job(0.0025 * i, 10.0) for i in range(200)]
    jobs[100:103] = [job(0.26, 50.0), job(0.265, 50.0), job(0.27, 50.0)]
    split = headroom_split(jobs, samples(0.5, 0.6, 0.99, 0.5, 0.55))
    assert split["saturated_share"] == 0.2
    assert split["busy_median"] == 0.55
    assert split["slowest_met_share"] == 1.0
    # jobs in flight during 0.2-0.3 s: published from 0.19 s (10 ms flights) to 0.3 s
    assert 0.15 < split["jobs_met_share"] < 0.25  # type: ignore[operator]
    assert split["p99_all_ms"] == 50.0
    assert split["p99_with_headroom_ms"] == 10.0


def test_a_machine_that_never_saturated_leaves_the_p99_as_it_is() -> None:
    jobs = [job(0.01 * i, 5.0 + i % 7) for i in range(40)]
    split = headroom_split(jobs, samples(0.5, 0.6, 0.7, 0.6, 0.5))
    assert split["saturated_share"] == 0.0
    assert split["slowest_met_share"] == 0.0
    assert split["jobs_met_share"] == 0.0
    assert split["p99_with_headroom_ms"] == split["p99_all_ms"] == 11.0


def test_no_jobs_or_no_samples_give_no_split() -> None:
    assert headroom_split([], samples(0.5)) == {}
    assert headroom_split([job(0, 1)], []) == {}
    assert busy_summary([]) == {}


def test_busy_and_steal_shares_come_from_two_readings_of_the_cpu_times() -> None:
    Times = namedtuple("Times", "user system idle iowait steal")
    busy, steal = busy_shares(Times(10, 5, 100, 5, 0), Times(16, 7, 101, 5, 1))
    assert (round(busy, 3), round(steal, 3)) == (0.9, 0.1)
    assert busy_shares(Times(1, 1, 1, 1, 1), Times(1, 1, 1, 1, 1)) == (0.0, 0.0)


def test_the_sampler_reads_the_real_machine_while_its_block_runs() -> None:
    with CpuBusySampler(interval_s=0.02) as sampler:
        end = time.monotonic() + 0.3
        while time.monotonic() < end:  # one core kept busy
            pass
    assert len(sampler.samples) >= 3
    assert all(0.0 <= s.busy <= 1.0 and 0.0 <= s.steal <= 1.0 for s in sampler.samples)
    assert max(s.busy for s in sampler.samples) > 0
    assert not sampler._thread.is_alive()
    assert samples_of([s.as_list() for s in sampler.samples])[0].at == round(
        sampler.samples[0].at, 3
    )
    assert all(a.at == b.since for a, b in zip(sampler.samples, sampler.samples[1:], strict=False))


def test_a_cluster_run_is_read_from_its_logs_and_its_samples(tmp_path: Path) -> None:
    def line(**event: object) -> bytes:
        return orjson.dumps(event) + b"\n"

    def stamp(s: float) -> str:
        return (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(T0 + s)))
            + f".{int(s % 1 * 1e6):06d}Z"
        )

    (tmp_path / "gateway.log").write_bytes(
        line(event="batch_accepted", batch_id="b", count=1, publish_ms=0.0, timestamp=stamp(0.2))
    )
    (tmp_path / "worker-1.log").write_bytes(
        line(
            event="job_completed",
            job_id="b.0",
            batch_id="b",
            duration_ms=5.0,
            timestamp=stamp(0.21),
        )
    )
    (tmp_path / "aggregator.log").write_bytes(
        line(event="result_folded", job_id="b.0", batch_id="b", timestamp=stamp(0.25))
    )
    figures = {
        "window": (T0, T0 + 1),
        "cpu_busy": [s.as_list() for s in samples(0.4, 0.5, 0.98)],
    }
    read_cluster_run(figures, tmp_path, per_batch=1)
    assert "window" not in figures
    assert figures["hops_ms"]["total"]["p99"] == 50.0  # type: ignore[index]
    assert figures["gc_pauses_ms"] == {}
    headroom = figures["headroom"]
    assert headroom["slowest_met_share"] == 1.0  # type: ignore[index]
    assert headroom["p99_with_headroom_ms"] is None  # type: ignore[index]
    assert median_headroom([figures, {"headroom": {}}]) == {
        k: v
        for k, v in headroom.items()
        if v is not None  # type: ignore[union-attr]
    }
    lines = headroom_lines(headroom, {"saturated_share": 0.0, "busy_median": 0.3})  # type: ignore[arg-type]
    assert "50% of the cluster's 100-ms samples" in lines[0]
    assert "0% of the bare relay's" in lines[0]
    assert "100% of the slowest 1%" in lines[1]
    assert lines[1].endswith("none for the jobs that never met a saturated moment")


def test_each_rounds_share_is_printed_where_a_median_would_hide_the_stalled_one() -> None:
    rounds = [
        {"headroom": {"slowest_met_share": 0.0}},
        {"headroom": {"slowest_met_share": 1.0}},
        {"headroom": {}},
        {"headroom": {"slowest_met_share": 0.0}},
    ]
    median = {"saturated_share": 0.0, "busy_median": 0.7, "steal_share": 0.001}
    lines = headroom_lines(median, None, rounds)
    assert lines[-1] == (
        "the slowest 1% that met a saturated machine, round by round: 0%, 100%, 0%"
    )
    assert len(headroom_lines(median, None, rounds[:1])) == 1
