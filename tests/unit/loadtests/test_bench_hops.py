"""The latency's split by hop, read back from the services' log lines."""

from __future__ import annotations

from pathlib import Path

import orjson

from loadtests.bench.hops import HOPS, gc_pauses, job_hops, summarize


def write(path: Path, *events: dict[str, object]) -> None:
    path.write_bytes(b"INFO: not json\n" + b"".join(orjson.dumps(e) + b"\n" for e in events))


def test_a_job_splits_into_its_hops_from_the_three_services_lines(tmp_path: Path) -> None:
    write(
        tmp_path / "gateway.log",
        {
            "event": "batch_accepted",
            "batch_id": "b",
            "count": 1,
            "publish_ms": 2.0,
            "timestamp": "2026-01-01T00:00:00.002000Z",
        },
        {
            "event": "batch_accepted",
            "batch_id": "other",
            "count": 500,
            "publish_ms": 1.0,
            "timestamp": "2026-01-01T00:00:00.002000Z",
        },
    )
    write(
        tmp_path / "worker-1.log",
        {
            "event": "job_completed",
            "job_id": "b.0",
            "batch_id": "b",
            "duration_ms": 9.0,
            "io_ms": 3.0,
            "timestamp": "2026-01-01T00:00:00.019000Z",
        },
    )
    write(
        tmp_path / "aggregator.log",
        {
            "event": "result_folded",
            "job_id": "b.0",
            "batch_id": "b",
            "timestamp": "2026-01-01T00:00:00.020000Z",
        },
        {
            "event": "result_folded",
            "job_id": "other.0",
            "batch_id": "other",
            "timestamp": "2026-01-01T00:00:00.020000Z",
        },
    )
    (job,) = job_hops(tmp_path, since=0, until=2e9, per_batch=1)
    # published at 0 ms, taken up at 10, steps 3, confirmed and acked at 19, folded at 20
    assert [round(ms, 3) for ms in job.ms] == [10.0, 3.0, 7.0, 6.0, 20.0]
    summary = summarize([job])
    assert list(summary) == list(HOPS)
    assert summary["total"] == {"p50": 20.0, "p99": 20.0, "slowest_1pct_mean": 20.0}
    assert job_hops(tmp_path, since=2e9, until=3e9, per_batch=1) == []


def test_collector_pauses_are_counted_per_service_inside_the_window(tmp_path: Path) -> None:
    def pause(at: float, cpu_ms: float) -> dict[str, object]:
        return {"event": "gc_pause", "at": at, "cpu_ms": cpu_ms, "wall_ms": cpu_ms}

    write(tmp_path / "gateway.log", pause(10.0, 40.0), pause(30.0, 50.0))
    write(tmp_path / "worker-1.log", pause(5.0, 12.0))
    assert gc_pauses(tmp_path, since=9, until=20) == {"gateway": [40.0]}
