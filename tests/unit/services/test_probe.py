"""services.probe: which heartbeats count as this container's, and the one-line failure."""

from __future__ import annotations

import time

import orjson
import typer
from typer.testing import CliRunner

from services.probe import Service, own_heartbeats, probe
from tests.conftest import free_port

app = typer.Typer()
app.command()(probe)


def beat(service: str, instance: str) -> bytes:
    return orjson.dumps({"service": service, "instance": instance, "last_seen": time.time()})


def test_heartbeats_of_this_host_and_service_count() -> None:
    entries: dict[bytes | str, bytes | str] = {
        b"box-7": beat("worker", "box-7"),
        b"box-8": beat("aggregator", "box-8"),
        b"other-7": beat("worker", "other-7"),
        b"boxer-9": beat("worker", "boxer-9"),
        "pod-worker-abc": beat("worker", "pod-worker-abc"),
    }
    mine = own_heartbeats(entries, "worker", instance="box-1234", hostname="box")
    assert [b.instance for b in mine] == ["box-7"]
    named = own_heartbeats(entries, "worker", instance="pod-worker-abc", hostname="node")
    assert [b.instance for b in named] == ["pod-worker-abc"]


def test_an_unreachable_gateway_fails_with_one_line(monkeypatch) -> None:
    monkeypatch.setenv("COORD_GATEWAY_PORT", str(free_port()))
    result = CliRunner().invoke(app, ["gateway", "--timeout", "1"])
    assert result.exit_code == 1
    assert result.output.startswith("unhealthy: http://127.0.0.1:")
    assert len(result.output.strip().splitlines()) == 1


def test_a_bad_setting_fails_with_one_line(monkeypatch) -> None:
    monkeypatch.setenv("COORD_GATEWAY_PORT", "not-a-port")
    result = CliRunner().invoke(app, [Service.GATEWAY.value])
    assert result.exit_code == 1
    assert result.output.strip() == "unhealthy: bad setting COORD_GATEWAY_PORT"
