"""The service runtime on real servers: what it opens, the order it closes, and failure."""

import asyncio
from typing import NoReturn

import pytest
from redis.asyncio import Redis

from shared.codec import loads
from shared.heartbeat import AggregatorBeat
from shared.metrics import AggregatorMetrics
from shared.service import ServiceRuntime
from shared.settings import Settings


def runtime(settings: Settings, **options: object) -> ServiceRuntime:
    return ServiceRuntime(
        settings,
        "aggregator",
        AggregatorMetrics(settings.instance, process_metrics=False),
        metrics_port=0,
        handle_signals=False,
        **options,  # type: ignore[arg-type]
    )


async def test_it_opens_topology_beats_and_closes_in_reverse(
    settings: Settings, redis: Redis
) -> None:
    closed: list[str] = []

    class Resource:
        def close(self) -> None:
            closed.append("resource")

    async with runtime(settings, prefetch=5) as service:
        service.closing(Resource())
        assert {"jobs", "results", "dead"} <= set(service.queues)
        service.start_heartbeat(AggregatorBeat, lambda: {"folded": 3})

        async def until_cancelled() -> None:
            try:
                await asyncio.sleep(60)
            finally:
                closed.append("task")

        service.spawn(until_cancelled(), name="sleeper")
        for _ in range(50):
            if await service.redis.hexists(settings.names.instances, settings.instance):
                break
            await asyncio.sleep(0.05)
        raw = await service.redis.hget(settings.names.instances, settings.instance)
        assert raw is not None and loads(raw)["folded"] == 3
        connection = service.connection
    assert closed == ["task", "resource"]
    assert connection.is_closed
    assert not await redis.hexists(settings.names.instances, settings.instance)


async def test_a_background_task_that_fails_stops_the_service_loudly(settings: Settings) -> None:
    failures: list[BaseException] = []

    async def broken() -> NoReturn:
        await asyncio.sleep(0.05)
        raise RuntimeError("listener died")

    with pytest.raises(ExceptionGroup) as raised:
        async with runtime(settings, on_failure=failures.append) as service:
            service.spawn(broken(), name="broken")
            await service.stop.wait()
    assert [str(e) for e in raised.value.exceptions] == ["listener died"]
    assert [str(e) for e in failures] == ["listener died"]


async def test_an_error_of_the_body_comes_out_as_itself(settings: Settings) -> None:
    with pytest.raises(LookupError, match="no such mode"):
        async with runtime(settings):
            raise LookupError("no such mode")
