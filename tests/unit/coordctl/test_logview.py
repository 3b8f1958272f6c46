from pathlib import Path

import orjson

from coordctl.logview import LogFilter, parse_line, read_records, render


def write(path: Path, *records: dict[str, object]) -> None:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records) + b"stray print\n")


def test_records_from_all_services_merge_in_time_order(tmp_path: Path) -> None:
    write(
        tmp_path / "gateway.log",
        {
            "event": "batch_accepted",
            "batch_id": "b1",
            "service": "gateway",
            "timestamp": "2026-01-01T00:00:01.000000Z",
        },
        {
            "event": "batch_accepted",
            "batch_id": "b2",
            "service": "gateway",
            "timestamp": "2026-01-01T00:00:02.000000Z",
        },
    )
    write(
        tmp_path / "worker-1.log",
        {
            "event": "job_completed",
            "batch_id": "b1",
            "job_id": "b1.0",
            "service": "worker",
            "timestamp": "2026-01-01T00:00:01.500000Z",
        },
    )
    records = read_records(sorted(tmp_path.glob("*.log")), LogFilter(batch_id="b1"))
    assert [r["event"] for r in records] == ["batch_accepted", "job_completed"]
    job_path = read_records(sorted(tmp_path.glob("*.log")), LogFilter(job_id="b1.0"))
    assert [r["service"] for r in job_path] == ["gateway", "worker"]


def test_level_filter_is_a_minimum() -> None:
    assert LogFilter(level="warning").matches({"event": "x", "level": "error"})
    assert not LogFilter(level="warning").matches({"event": "x", "level": "info"})


def test_non_json_lines_are_skipped_and_records_render() -> None:
    assert parse_line(b"INFO: uvicorn says hi") is None
    text = render({"event": "job_completed", "service": "worker", "level": "info", "value": 3})
    assert "job_completed" in text.plain and "value=3" in text.plain


def test_job_filter_keeps_the_batch_level_lines_of_its_batch() -> None:
    job = LogFilter(job_id="b1.7")
    assert job.matches({"event": "batch_accepted", "batch_id": "b1", "service": "gateway"})
    assert job.matches({"event": "job_completed", "batch_id": "b1", "job_id": "b1.7"})
    assert job.matches({"event": "batch_completed", "batch_id": "b1", "service": "aggregator"})
    assert not job.matches({"event": "job_completed", "batch_id": "b1", "job_id": "b1.8"})
    assert not job.matches({"event": "batch_accepted", "batch_id": "b2"})
    assert not job.matches({"event": "worker_started", "service": "worker"})
