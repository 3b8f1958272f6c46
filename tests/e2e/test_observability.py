"""Metrics and logs of a real local cluster: /metrics on every service, one job's log path."""

import os
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from coordctl.local import ClusterState, cluster_status
from shared.settings import Settings, WorkerMode
from tests.conftest import ClusterFactory
from tests.e2e.conftest import run_batch

JOBS = 20


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = httpx.get(url, timeout=5).text
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def total(found: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(
        value
        for sample_labels, value in found.get(name, [])
        if all(sample_labels.get(k) == v for k, v in labels.items())
    )


def eventually(check: Callable[[], bool], timeout_s: float = 15) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)
    return True


def run_cpu_batch(state: ClusterState, count: int = JOBS) -> str:
    status = run_batch(state.gateway_url, "cpu", count, n=10_000)
    assert status["result"]["sum"] == 1229 * count
    batch_id: str = status["batch_id"]
    return batch_id


def metrics_url(state: ClusterState, name: str) -> str:
    (member,) = [m for m in state.members if m.name == name]
    assert member.metrics_port > 0
    return f"http://127.0.0.1:{member.metrics_port}/metrics"


def test_every_service_shows_the_batch_on_its_metrics_endpoint(
    start_cluster: ClusterFactory, settings: Settings
) -> None:
    state = start_cluster(workers=1, mode=WorkerMode.PROCESSES, pool_size=2)
    run_cpu_batch(state)
    gateway_url = f"{state.gateway_url}/metrics"
    worker_url = metrics_url(state, "worker-1")
    aggregator_url = metrics_url(state, "aggregator")

    assert eventually(lambda: total(scrape(worker_url), "coord_jobs_completed_total") >= JOBS)
    worker = scrape(worker_url)
    labels = {"instance": "worker-1", "mode": "processes", "kind": "cpu"}
    assert total(worker, "coord_jobs_received_total", **labels) == JOBS
    assert total(worker, "coord_jobs_completed_total", **labels) == JOBS
    # CPU steps ran in pool processes, yet every one was timed in the main process.
    assert total(worker, "coord_step_duration_seconds_count", step="cpu", **labels) == JOBS
    assert total(worker, "coord_pool_size", instance="worker-1") == 2
    assert total(worker, "coord_loop_lag_seconds_count", instance="worker-1") > 0

    assert eventually(lambda: total(scrape(aggregator_url), "coord_batches_completed_total") == 1)
    aggregator = scrape(aggregator_url)
    assert total(aggregator, "coord_results_folded_total", instance="aggregator") == JOBS
    assert total(aggregator, "coord_results_duplicates_total") == 0

    gateway = scrape(gateway_url)
    assert total(gateway, "coord_jobs_accepted_total", instance="gateway", kind="cpu") == JOBS
    assert total(gateway, "coord_http_requests_total", route="/batches", status="202") == 1
    assert total(gateway, "coord_http_requests_total", route="/batches/{batch_id}") >= 1

    report = cluster_status(settings.run_dir)
    assert report is not None
    ports = {m["name"]: m["metrics_port"] for m in report["members"]}
    beats = {i["instance"]: i.get("metrics_port") for i in report["instances"]}
    assert ports["gateway"] == settings.gateway_port
    assert len(set(ports.values())) == len(ports), "each local process has its own port"
    assert all(beats[name] == port for name, port in ports.items())


def test_cluster_logs_follow_one_job_through_every_service(
    start_cluster: ClusterFactory, settings: Settings
) -> None:
    state = start_cluster(workers=1, mode=WorkerMode.PROCESSES, pool_size=1)
    batch_id = run_cpu_batch(state, count=5)
    job_id = f"{batch_id}.3"
    env = {
        **os.environ,
        "COORD_RUN_DIR": str(settings.run_dir),
        "COORD_NAMESPACE": settings.namespace,
        "COLUMNS": "400",
    }
    output = ""

    def path_is_complete() -> bool:
        nonlocal output
        output = subprocess.run(
            [sys.executable, "-m", "coordctl.cli", "logs", "--job", job_id],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
        return "batch_completed" in output

    assert eventually(path_is_complete, timeout_s=10), output
    lines = [line for line in output.splitlines() if line.strip()]
    # Lines come merged in time order, but the services race (a worker logs after its
    # ack, the aggregator may fold the result first), so only the set of steps is fixed.
    events = {(line.split()[1], line.split()[4]) for line in lines}
    assert lines[0].split()[1:5:3] == ["gateway", "batch_received"]
    assert events == {
        ("gateway", "batch_received"),
        ("gateway", "batch_accepted"),
        ("worker", "job_completed"),
        ("aggregator", "result_folded"),
        ("aggregator", "batch_completed"),
    }
    worker_line = next(line for line in lines if " job_completed" in line)
    for field in (f"job_id={job_id}", f"batch_id={batch_id}", "mode=processes", "cpu_ms="):
        assert field in worker_line
    assert not any(f"{batch_id}.2" in line or f"{batch_id}.4" in line for line in lines)
    print(output)
