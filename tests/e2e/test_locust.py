"""A short headless Locust run through ``loadtests.run`` against a real cluster.

Locust runs in a subprocess, as ``make load`` runs it, so gevent's monkey-patching never
reaches the test process.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, ClusterFactory

USERS = 10
RUN_TIME = "10s"


def test_headless_run_reports_http_and_batch_rows_without_failures(
    start_cluster: ClusterFactory, tmp_path: Path
) -> None:
    cluster = start_cluster(workers=1)
    reports = tmp_path / "reports"
    command = [
        sys.executable, "-m", "loadtests.run", "headless",
        "--users", str(USERS), "--spawn-rate", str(USERS), "--run-time", RUN_TIME,
        "--host", cluster.gateway_url, "--reports", str(reports),
        "--", "--only-summary", "--think-min", "0.2", "--think-max", "0.6",
    ]  # fmt: skip
    result = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    run_dir = (reports / "latest").resolve()
    for name in ("locust_stats.csv", "locust_stats_history.csv", "report.html", "summary.json"):
        assert (run_dir / name).stat().st_size > 0, name
    summary = json.loads((run_dir / "summary.json").read_text())
    groups = summary["groups"]
    assert groups["POST"]["requests"] > 0
    assert groups["BATCH"]["requests"] > 0
    assert groups["HTTP"]["failures"] == 0 and groups["BATCH"]["failures"] == 0
    assert groups["BATCH"]["p50_ms"] > 0

    with (run_dir / "locust_stats.csv").open() as stats_file:
        rows = {(row["Type"], row["Name"]): row for row in csv.DictReader(stats_file)}
    batch_rows = [row for (kind, _), row in rows.items() if kind == "BATCH"]
    assert batch_rows and all(row["Failure Count"] == "0" for row in batch_rows)
    assert int(rows[("", "Aggregated")]["Request Count"]) > 0
    assert "load test summary" in result.stdout
