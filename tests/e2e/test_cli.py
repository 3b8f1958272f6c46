"""The `cluster` command as a person uses it: up, status, submit, logs, down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from coordctl.servers import pid_alive
from shared.settings import Settings

CLUSTER = str(Path(sys.executable).with_name("cluster"))


def cluster(
    settings: Settings, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "COORD_NAMESPACE": settings.namespace,
        "COORD_GATEWAY_PORT": str(settings.gateway_port),
        "COORD_RUN_DIR": str(settings.run_dir),
        "COORD_AMQP_URL": settings.amqp_url.get_secret_value(),
        "COORD_REDIS_URL": settings.redis_url.get_secret_value(),
        "COLUMNS": "200",
        "COORD_ENGINE": "local",
    }
    return subprocess.run(
        [CLUSTER, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_up_status_submit_logs_down(settings: Settings) -> None:
    try:
        up = cluster(settings, "up", "--workers", "2", "--mode", "processes", "--pool", "1")
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"http://127.0.0.1:{settings.gateway_port}" in up.stdout

        status = json.loads(cluster(settings, "status", "--json").stdout)
        names = {member["name"] for member in status["members"]}
        assert names == {"gateway", "worker-1", "worker-2", "aggregator"}
        assert all(member["alive"] for member in status["members"])
        assert status["queues"][settings.names.jobs_queue] == 0

        submitted = cluster(settings, "submit", "--kind", "cpu", "--count", "100", "--n", "10000")
        assert submitted.returncode == 0, submitted.stderr
        result = json.loads(submitted.stdout[submitted.stdout.index("{") :])
        assert (result["completed"], result["result"]["sum"]) == (100, 122_900)

        logs = cluster(settings, "logs", "--batch", result["batch_id"])
        assert logs.returncode == 0, logs.stderr
        for line in ("batch_accepted", "job_completed", "batch_completed"):
            assert line in logs.stdout
        for service in ("gateway", "worker-", "aggregator"):
            assert service in logs.stdout
    finally:
        down = cluster(settings, "down")
    assert down.returncode == 0, down.stderr
    assert not any(pid_alive(member["pid"]) for member in status["members"])
    assert "no local cluster" in cluster(settings, "down").stdout


def test_errors_are_one_line(settings: Settings) -> None:
    no_cluster = cluster(settings, "status")
    assert no_cluster.returncode == 1
    assert no_cluster.stderr.strip().count("\n") == 0
    assert "Traceback" not in no_cluster.stderr

    bad = cluster(settings, "submit", "--kind", "cpu", "--count", "0")
    assert bad.returncode != 0
    assert "Traceback" not in bad.stdout + bad.stderr
