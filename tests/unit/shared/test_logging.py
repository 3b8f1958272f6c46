from collections.abc import Iterator

import orjson
import pytest
import structlog

from shared.logging import configure_logging, context_headers, job_context
from shared.settings import load_settings


@pytest.fixture(autouse=True)
def restore_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def lines(captured: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in captured.splitlines() if line.strip()]


def test_json_lines_carry_service_instance_mode_and_job_ids(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = load_settings(instance="worker-7", log_format="json", log_level="info")
    log = configure_logging(settings, "worker", mode="processes")
    with job_context(job_id="b1.3", batch_id="b1", trace_id="t9"):
        log.info("job_completed", duration_ms=12.5, cpu_ms=11.0)
    log.info("worker_idle")
    first, second = lines(capsys.readouterr().out)
    assert first["event"] == "job_completed"
    for key, value in {
        "service": "worker",
        "instance": "worker-7",
        "mode": "processes",
        "level": "info",
        "job_id": "b1.3",
        "batch_id": "b1",
        "trace_id": "t9",
        "duration_ms": 12.5,
    }.items():
        assert first[key] == value
    assert "timestamp" in first
    assert "job_id" not in second, "job ids are unbound when the job's block ends"


def test_level_comes_from_the_setting(capsys: pytest.CaptureFixture[str]) -> None:
    log = configure_logging(load_settings(log_format="json", log_level="warning"), "gateway")
    log.info("quiet")
    log.debug("quieter")
    log.warning("loud")
    assert [line["event"] for line in lines(capsys.readouterr().out)] == ["loud"]


def test_secrets_never_reach_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    log = configure_logging(load_settings(log_format="json"), "gateway")
    log.info("connecting", amqp_url="amqp://guest:guest@host/")
    assert lines(capsys.readouterr().out)[0]["amqp_url"] == "***"


def test_job_ids_travel_in_message_headers() -> None:
    headers = {"job_id": "b1.3", "batch_id": "b1", "trace_id": "", "x-death": [1]}
    assert context_headers(headers) == {"job_id": "b1.3", "batch_id": "b1"}
    assert context_headers(None) == {}
