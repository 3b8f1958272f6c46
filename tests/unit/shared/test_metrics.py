import asyncio
import re
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from shared.looplag import LoopLagMonitor
from shared.metrics import (
    AggregatorMetrics,
    GatewayMetrics,
    Metrics,
    WorkerMetrics,
    step_family,
)

WORKER = {"service": "worker", "instance": "w1", "mode": "processes"}


def families(metrics: Metrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Parsed exposition text: what a Prometheus scrape would read."""
    parsed = text_string_to_metric_families(metrics.exposition().decode())
    return {f.name: [(s.labels, s.value) for s in f.samples] for f in parsed}


def test_every_family_carries_the_prefix_and_its_labels() -> None:
    metrics = WorkerMetrics("w1", mode="processes", process_metrics=False)
    metrics.job_received("cpu")
    metrics.job_completed("mixed", {"io_before": 5.0, "cpu": 20.0, "io_after": 5.0})
    metrics.job_failed("io")
    metrics.job_retried("io")
    found = families(metrics)
    assert all(name.startswith("coord_") for name in found)
    assert found["coord_jobs_received"] == [({**WORKER, "kind": "cpu"}, 1.0)]
    assert ({**WORKER, "kind": "mixed"}, 1.0) in found["coord_jobs_completed"]
    assert ({**WORKER, "kind": "io"}, 1.0) in found["coord_jobs_failed"]
    assert ({**WORKER, "kind": "io"}, 1.0) in found["coord_jobs_retried"]
    steps = {
        (labels["step"], labels.get("le")): value
        for labels, value in found["coord_step_duration_seconds"]
        if labels.get("le") in ("0.01", "0.025", "+Inf")
    }
    assert steps == {
        ("io", "0.01"): 2.0,
        ("io", "0.025"): 2.0,
        ("io", "+Inf"): 2.0,
        ("cpu", "0.01"): 0.0,
        ("cpu", "0.025"): 1.0,
        ("cpu", "+Inf"): 1.0,
    }


def test_step_names_fold_into_io_and_cpu() -> None:
    assert [step_family(s) for s in ("io", "io_before", "io_after", "cpu")] == [
        "io",
        "io",
        "io",
        "cpu",
    ]


def test_gauges_read_live_values_at_scrape_time() -> None:
    metrics = WorkerMetrics("w1", mode="processes", process_metrics=False)
    state = {"in_flight": 3, "busy": 2}
    metrics.track_worker(lambda: state["in_flight"], lambda: state["busy"])
    metrics.set_pool_size(4)
    state["in_flight"] = 7
    found = families(metrics)
    assert found["coord_jobs_in_flight"] == [(WORKER, 7.0)]
    assert found["coord_pool_busy"] == [(WORKER, 2.0)]
    assert found["coord_pool_size"] == [(WORKER, 4.0)]


def test_gateway_figures_queue_depths_and_http() -> None:
    metrics = GatewayMetrics("g1", process_metrics=False)
    depths = {"ns.jobs": 12, "ns.results": 0}
    metrics.track_queue_depths(lambda: depths)
    metrics.batch_accepted("cpu", 100)
    metrics.set_batches_in_flight(2)
    metrics.http_request("POST", "/batches", 202, 0.004)
    metrics.http_request("GET", "/batches/{batch_id}", 404, 0.001)
    found = families(metrics)
    base = {"service": "gateway", "instance": "g1"}
    assert found["coord_queue_depth"] == [
        ({**base, "queue": "ns.jobs"}, 12.0),
        ({**base, "queue": "ns.results"}, 0.0),
    ]
    assert found["coord_jobs_accepted"] == [({**base, "kind": "cpu"}, 100.0)]
    assert found["coord_batches_accepted"] == [({**base, "kind": "cpu"}, 1.0)]
    assert found["coord_batches_in_flight"] == [(base, 2.0)]
    requests = {
        (labels["method"], labels["route"], labels["status"]): value
        for labels, value in found["coord_http_requests"]
    }
    assert requests == {
        ("POST", "/batches", "202"): 1.0,
        ("GET", "/batches/{batch_id}", "404"): 1.0,
    }


def test_aggregator_fold_counters() -> None:
    metrics = AggregatorMetrics("a1", process_metrics=False)
    metrics.fold_outcome(folded=10, duplicates=2, orphans=1, done=1)
    metrics.fold_outcome(folded=5, duplicates=0, orphans=0, done=0)
    found = families(metrics)
    base = {"service": "aggregator", "instance": "a1"}
    assert found["coord_results_folded"] == [(base, 15.0)]
    assert found["coord_results_duplicates"] == [(base, 2.0)]
    assert found["coord_results_orphans"] == [(base, 1.0)]
    assert found["coord_batches_completed"] == [(base, 1.0)]


async def test_loop_lag_is_observed_into_the_histogram() -> None:
    metrics = AggregatorMetrics("a1", process_metrics=False)
    monitor = LoopLagMonitor(0.01)
    metrics.track_loop_lag(monitor)
    task = asyncio.create_task(monitor.run())
    await asyncio.sleep(0.1)
    task.cancel()
    labels = {"service": "aggregator", "instance": "a1", "mode": ""}
    count = metrics.registry.get_sample_value("coord_loop_lag_seconds_count", labels)
    assert count == len(monitor.samples) > 0


def test_two_services_in_one_process_keep_separate_registries() -> None:
    first = GatewayMetrics("g1", process_metrics=False)
    second = GatewayMetrics("g2", process_metrics=False)
    first.batch_accepted("io", 3)
    assert (
        second.registry.get_sample_value(
            "coord_jobs_accepted_total", {"service": "gateway", "instance": "g2", "kind": "io"}
        )
        is None
    )


def test_serve_answers_a_scrape_and_stops() -> None:
    metrics = AggregatorMetrics("a1")
    metrics.fold_outcome(folded=4, duplicates=0, orphans=0, done=1)
    server = metrics.serve("127.0.0.1", 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as answer:
            body = answer.read().decode()
    finally:
        server.close()
    assert 'coord_results_folded_total{instance="a1",service="aggregator"} 4.0' in body
    assert "process_cpu_seconds_total" in body


def test_every_metric_the_grafana_dashboard_queries_is_exported() -> None:
    """The Compose profile's Grafana dashboard and shared/metrics.py must name the same series."""
    root = Path(__file__).resolve().parents[3]
    board = (root / "deploy/observability/grafana/dashboards/coord-cluster.json").read_text()
    queried = set(re.findall(r"coord_[a-z_]+", board))
    assert queried, "the dashboard queries no coord_ metric"
    exported = set()
    gateway = GatewayMetrics("x", process_metrics=False)
    gateway.track_queue_depths(lambda: {"ns.jobs": 0})
    roles: list[Metrics] = [
        gateway,
        WorkerMetrics("x", mode="processes", process_metrics=False),
        AggregatorMetrics("x", process_metrics=False),
    ]
    for metrics in roles:
        for family in metrics.registry.collect():
            exported |= {sample.name for sample in family.samples} | {family.name}
        exported |= {
            f"{family.name}{suffix}"
            for family in metrics.registry.collect()
            for suffix in ("_total", "_bucket", "_count", "_sum")
        }
    assert queried <= exported, sorted(queried - exported)


def test_each_role_registers_only_its_own_series() -> None:
    def names(metrics: Metrics) -> set[str]:
        return {family.name for family in metrics.registry.collect()}

    worker = names(WorkerMetrics("w", mode="threads", process_metrics=False))
    gateway = names(GatewayMetrics("g", process_metrics=False))
    aggregator = names(AggregatorMetrics("a", process_metrics=False))
    assert "coord_jobs_completed" in worker and "coord_jobs_completed" not in gateway | aggregator
    assert "coord_batches_accepted" in gateway and "coord_batches_accepted" not in worker
    assert "coord_results_folded" in aggregator and "coord_results_folded" not in gateway | worker
    assert {"coord_loop_lag_seconds"} <= worker & gateway & aggregator
