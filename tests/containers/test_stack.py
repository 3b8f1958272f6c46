"""The Compose stack on a real engine: build, start, scale, lose a worker, stop cleanly."""

from __future__ import annotations

import time

import httpx

from coordctl import compose
from loadtests.compare.clusters import step_timer
from shared.settings import WorkerMode
from tests.e2e.conftest import run_batch, submit, wait_done

PRIMES_BELOW_10000 = 1229
BIG_BATCH = 1500


def gateway(project: compose.Project) -> str:
    return f"http://127.0.0.1:{project.env['COORD_GATEWAY_PORT']}"


def worker_ids(project: compose.Project) -> list[str]:
    containers = compose.project_containers(project, every=False)
    return [
        c["Id"] for c in containers if c["Labels"].get("com.docker.compose.service") == "worker"
    ]


def completed(url: str, batch_id: str) -> int:
    answer: int = httpx.get(f"{url}/batches/{batch_id}", timeout=10).json()["completed"]
    return answer


def test_stack_gives_known_answers_survives_a_killed_worker_and_leaves_nothing(
    project: compose.Project,
) -> None:
    url = gateway(project)
    compose.compose_up(project, 1, WorkerMode.PROCESSES, 0, gateway_url=url, write_env_file=False)
    in_image = step_timer(project, runs=2)(10_000)
    assert len(in_image) == 2 and all(ms > 0 for ms in in_image), "the comparison's yardstick"
    known = run_batch(url, "cpu", 20, n=10_000)
    assert (known["completed"], known["failed"]) == (20, 0)
    assert known["result"] == {
        "sum": 20 * PRIMES_BELOW_10000,
        "min": PRIMES_BELOW_10000,
        "max": PRIMES_BELOW_10000,
    }

    compose.compose_scale(project, "worker", 2)
    compose.wait_ready(url, 2, timeout_s=180)
    assert len(worker_ids(project)) == 2

    batch_id = submit(url, "cpu", BIG_BATCH, n=10_000)
    deadline = time.monotonic() + 120
    while completed(url, batch_id) < BIG_BATCH // 10 and time.monotonic() < deadline:
        time.sleep(0.2)
    done_before_kill = completed(url, batch_id)
    assert 0 < done_before_kill < BIG_BATCH, "the kill must land mid-batch"
    victim = worker_ids(project)[0]
    with compose.engine_client(project.env) as client:
        client.post(f"/containers/{victim}/kill", params={"signal": "KILL"}).raise_for_status()

    result = wait_done(url, batch_id, timeout_s=300)
    assert (result["completed"], result["failed"]) == (BIG_BATCH, 0)
    assert result["result"]["sum"] == BIG_BATCH * PRIMES_BELOW_10000

    compose.compose_down(project)
    assert compose.project_containers(project) == []
    assert compose.project_networks(project) == []
    assert compose.project_volumes(project) == []
