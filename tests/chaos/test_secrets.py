"""No secret reaches a log line, the state file or `cluster status`, even when things fail."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx

from coordctl.local import cluster_status
from coordctl.servers import start_private_redis, stop_process_group
from shared.settings import Settings, WorkerMode
from tests.chaos.conftest import member_pid
from tests.conftest import ClusterFactory, free_port
from tests.e2e.conftest import wait_done

REDIS_PASSWORD = "redis-pw-7f3a9c"
API_KEY = "api-key-51d0e2"


def test_secrets_stay_out_of_logs_and_state(
    start_cluster: ClusterFactory, settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    redis = start_private_redis(tmp_path / "redis", port, password=REDIS_PASSWORD)
    try:
        cluster = start_cluster(
            workers=1,
            mode=WorkerMode.THREADS,
            redis_url=f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0",
            api_key=API_KEY,
        )
        url = cluster.gateway_url
        assert httpx.post(f"{url}/batches", json={"kind": "io", "count": 5}).status_code == 401
        accepted = httpx.post(
            f"{url}/batches",
            json={"kind": "io", "count": 5, "params": {"io_ms": 1}},
            headers={"X-API-Key": API_KEY},
        )
        assert accepted.status_code == 202
        wait_done(url, accepted.json()["batch_id"])

        # A Redis outage makes every service log its connection errors.
        os.kill(redis.pid, signal.SIGSTOP)
        httpx.post(
            f"{url}/batches",
            json={"kind": "io", "count": 1},
            headers={"X-API-Key": API_KEY},
            timeout=30,
        )
        os.kill(redis.pid, signal.SIGCONT)
        status_text = str(cluster_status(settings.run_dir))
        os.kill(member_pid(cluster, "worker-1"), signal.SIGTERM)
    finally:
        os.kill(redis.pid, signal.SIGCONT)
        stop_process_group(redis.pid, timeout_s=10)

    written = [path.read_text() for path in Path(cluster.run_dir).rglob("*") if path.is_file()]
    assert written
    for secret in (REDIS_PASSWORD, API_KEY):
        assert secret not in status_text
        for text in written:
            assert secret not in text
