import os

import pytest
from pydantic import ValidationError

from shared.settings import WorkerMode, load_settings


def test_settings_come_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COORD_NAMESPACE", "demo")
    monkeypatch.setenv("COORD_WORKER_MODE", "threads")
    monkeypatch.setenv("COORD_POOL_SIZE", "3")
    settings = load_settings()
    assert settings.namespace == "demo"
    assert settings.worker_mode is WorkerMode.THREADS
    assert settings.effective_pool_size == 3
    assert settings.names.jobs_queue == "demo.jobs"


def test_pool_defaults_to_one_process_per_core() -> None:
    assert load_settings(pool_size=0).effective_pool_size == (os.cpu_count() or 1)


def test_prefetch_defaults_to_twice_the_runners() -> None:
    assert load_settings(runners=7).effective_prefetch == 14


@pytest.mark.parametrize("bad", ["", "Has Space", "UPPER", "a" * 60])
def test_namespace_is_validated(bad: str) -> None:
    with pytest.raises(ValidationError, match="namespace"):
        load_settings(namespace=bad)


def test_secrets_do_not_show_in_repr() -> None:
    settings = load_settings(amqp_url="amqp://user:s3cret@host/", api_key="k3y")
    assert "s3cret" not in repr(settings)
    assert "k3y" not in repr(settings)


def test_metrics_serve_where_the_gateway_does_unless_told() -> None:
    assert load_settings(gateway_host="0.0.0.0").effective_metrics_host == "0.0.0.0"
    assert (
        load_settings(gateway_host="0.0.0.0", metrics_host="127.0.0.1").effective_metrics_host
        == "127.0.0.1"
    )
    assert load_settings().metrics_port == 9100
    assert load_settings(metrics_port=0).metrics_port == 0
    with pytest.raises(ValidationError, match="metrics_port"):
        load_settings(metrics_port=70_000)


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COORD_API_KEY", "")
    assert load_settings().api_key is None
