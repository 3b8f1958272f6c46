"""Prometheus and Grafana files of the Compose profile `observability`."""

from __future__ import annotations

import json
from typing import Any

import yaml

from tests.unit.deploy.conftest import ROOT

OBSERVABILITY = ROOT / "deploy" / "observability"
METRICS = (
    "coord_jobs_completed_total",
    "coord_queue_depth",
    "coord_loop_lag_seconds_bucket",
    "coord_step_duration_seconds_bucket",
    "coord_jobs_in_flight",
    "coord_batches_in_flight",
    "coord_http_requests_total",
    "coord_http_request_duration_seconds_bucket",
)


def load_yaml(relative: str) -> Any:
    return yaml.safe_load((OBSERVABILITY / relative).read_text())


def dashboard() -> dict[str, Any]:
    loaded = json.loads((OBSERVABILITY / "grafana/dashboards/coord-cluster.json").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_prometheus_scrapes_every_service_and_its_replicas() -> None:
    config = load_yaml("prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    expected_ports = {"gateway": 8000, "worker": 9100, "aggregator": 9100}
    for name, port in expected_ports.items():
        (discovery,) = jobs[name]["dns_sd_configs"]
        assert discovery == {**discovery, "names": [name], "type": "A", "port": port}
        assert jobs[name]["honor_labels"] is True, "keep the services' own instance label"


def test_prometheus_targets_are_compose_services(compose: dict[str, Any]) -> None:
    config = load_yaml("prometheus.yml")
    for job in config["scrape_configs"]:
        names = [n for d in job.get("dns_sd_configs", []) for n in d["names"]]
        hosts = [t.split(":")[0] for s in job.get("static_configs", []) for t in s["targets"]]
        for host in names + hosts:
            assert host in compose["services"], host


def test_grafana_provisions_the_datasource_the_dashboard_uses(compose: dict[str, Any]) -> None:
    (datasource,) = load_yaml("grafana/provisioning/datasources/prometheus.yml")["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    for panel in dashboard()["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
    (provider,) = load_yaml("grafana/provisioning/dashboards/coord.yml")["providers"]
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/observability/grafana/dashboards:{provider['options']['path']}:ro" in mounts


def test_dashboard_shows_every_figure() -> None:
    expressions = [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]
    for metric in METRICS:
        assert any(metric in e for e in expressions), f"no panel shows {metric}"
    assert any("by (instance" in e and "coord_jobs_completed_total" in e for e in expressions)
    assert any("histogram_quantile(0.99" in e and "loop_lag" in e for e in expressions)


def test_dashboard_panels_do_not_overlap() -> None:
    cells: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & mine, panel["title"]
        assert grid["x"] + grid["w"] <= 24
        cells |= mine
