"""A result delivered more than once counts once, through the real aggregator."""

from __future__ import annotations

import asyncio
import time

import httpx

from shared.jobs import JobKind, Result
from shared.messaging import connect_amqp, make_message, publish_many_confirmed
from shared.settings import Settings, WorkerMode
from tests.conftest import ClusterFactory
from tests.e2e.conftest import run_batch


def aggregator_stats(gateway_url: str) -> dict[str, int]:
    instances = httpx.get(f"{gateway_url}/instances", timeout=5).json()["instances"]
    return next(i for i in instances if i["service"] == "aggregator")


async def replay(settings: Settings, results: list[Result]) -> None:
    """Publish results straight to the results queue, as a redelivery would."""
    connection = await connect_amqp(settings, attempts=3)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = settings.names.results_queue
        messages = [(queue, make_message(result.encode())) for result in results]
        await publish_many_confirmed(channel.default_exchange, messages, window=64, timeout_s=30)


def test_redelivered_results_are_absorbed(
    start_cluster: ClusterFactory, settings: Settings
) -> None:
    cluster = start_cluster(workers=1, mode=WorkerMode.THREADS)
    batch = run_batch(cluster.gateway_url, "cpu", 20, n=10_000)
    assert (batch["completed"], batch["result"]["sum"]) == (20, 24_580)

    copies = [
        Result(
            job_id=f"{batch['batch_id']}.{index}",
            batch_id=batch["batch_id"],
            kind=JobKind.CPU,
            ok=True,
            value=1229,
            submitted_at=time.time(),
            finished_at=time.time(),
            worker="replayed",
        )
        for index in range(20)
    ]
    asyncio.run(replay(settings, copies * 2))

    deadline = time.monotonic() + 15
    while aggregator_stats(cluster.gateway_url)["duplicates"] < 40:
        assert time.monotonic() < deadline, aggregator_stats(cluster.gateway_url)
        time.sleep(0.2)
    again = httpx.get(f"{cluster.gateway_url}/batches/{batch['batch_id']}", timeout=5).json()
    assert (again["completed"], again["result"]["sum"]) == (20, 24_580)
    assert "replayed" not in again["workers"]
