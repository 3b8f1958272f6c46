"""Server fixtures, and an in-process cluster: the services' consumers on real channels."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aio_pika.abc import AbstractRobustConnection
from redis.asyncio import Redis

from services.aggregator.consumer import ResultConsumer
from services.aggregator.fold import ResultFolder
from services.worker.consumer import JobConsumer
from services.worker.executors import CpuRunner
from services.worker.steps import JobSteps
from shared.messaging import (
    connect_amqp,
    declare_topology,
    make_message,
    open_publishing_channel,
    queue_depths,
)
from shared.redis_client import connect_redis
from shared.settings import Settings, WorkerMode


@pytest.fixture
async def amqp(settings: Settings) -> AsyncIterator[AbstractRobustConnection]:
    connection = await connect_amqp(settings, attempts=3)
    async with connection:
        yield connection


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = await connect_redis(settings, attempts=3)
    yield client
    await client.aclose()


class InProcessCluster:
    """A worker's ``JobConsumer`` and an aggregator's ``ResultConsumer`` on real channels,
    inside the test's own event loop: the way arq's tests run a real worker in burst mode.

    The CPU step runs in blocking mode; every server is real, and nothing is mocked.
    """

    def __init__(
        self, settings: Settings, amqp: AbstractRobustConnection, redis: Redis, fail_n: int
    ) -> None:
        self.settings = settings
        self.amqp = amqp
        self.redis = redis
        self.fail_n = fail_n
        self.cpu = CpuRunner(WorkerMode.BLOCKING, 1)
        self.tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> InProcessCluster:
        names = self.settings.names
        self.worker_channel = await open_publishing_channel(self.amqp)
        await self.worker_channel.set_qos(prefetch_count=self.settings.effective_prefetch)
        queues = await declare_topology(self.worker_channel, names)
        self.steps = JobSteps(self.redis, names, self.cpu, fail_n=self.fail_n)
        self.worker = JobConsumer(
            self.settings, self.worker_channel, queues["jobs"], self.steps, self.cpu
        )
        self.aggregator_channel = await self.amqp.channel()
        await self.aggregator_channel.set_qos(prefetch_count=self.settings.aggregator_prefetch)
        results = await self.aggregator_channel.get_queue(names.results_queue)
        self.folder = ResultFolder(self.redis, names, ttl_s=600)
        self.aggregator = ResultConsumer(self.settings, results, self.folder)
        self.tasks = [
            asyncio.create_task(self.aggregator.folder_loop()),
            *(asyncio.create_task(self.worker.runner()) for _ in range(self.settings.runners)),
        ]
        await self.aggregator.start_consuming()
        await self.worker.start_consuming()
        return self

    async def publish(self, bodies: list[bytes]) -> None:
        for body in bodies:
            await self.worker_channel.default_exchange.publish(
                make_message(body), routing_key=self.settings.names.jobs_queue
            )

    async def publish_results(self, bodies: list[bytes]) -> None:
        for body in bodies:
            await self.worker_channel.default_exchange.publish(
                make_message(body), routing_key=self.settings.names.results_queue
            )

    async def run_until(self, done: Callable[[], Awaitable[bool]], timeout_s: float = 30) -> None:
        """Let both consumers run until ``done()`` holds; fail after ``timeout_s``."""
        for _ in range(round(timeout_s / 0.05)):
            if await done():
                return
            await asyncio.sleep(0.05)
        pytest.fail(f"{done.__name__} did not hold within {timeout_s} s: {await self.stats()}")

    async def stats(self) -> dict[str, object]:
        return {
            "worker": self.worker.stats(),
            "aggregator": self.aggregator.stats(),
            "depths": await self.depths(),
        }

    async def depths(self) -> dict[str, int]:
        return await queue_depths(self.amqp, self.settings.names)

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop consuming, finish what was received, then close the channels: any message
        left unacked goes back to its queue, where the test's depths will see it."""
        await self.worker.stop_consuming()
        await self.aggregator.stop_consuming()
        await self.worker.drain(10)
        await self.aggregator.drain()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.cpu.close()
        await self.worker_channel.close()
        await self.aggregator_channel.close()


@pytest.fixture
def in_process(
    settings: Settings, amqp: AbstractRobustConnection, redis: Redis
) -> Callable[..., InProcessCluster]:
    """``in_process(fail_n=0, **overrides)``: an in-process cluster on this test's namespace."""

    def build(fail_n: int = 0, **overrides: object) -> InProcessCluster:
        return InProcessCluster(settings.replace(**overrides), amqp, redis, fail_n)

    return build
