"""Aggregator wiring: settings -> runtime -> consumer and folder -> fold what is pending on stop."""

from __future__ import annotations

from services.aggregator.consumer import ResultConsumer
from services.aggregator.fold import ResultFolder
from shared.heartbeat import AggregatorBeat
from shared.metrics import AggregatorMetrics
from shared.runtime import run_service
from shared.service import ServiceRuntime
from shared.settings import Settings, load_settings


async def main(settings: Settings) -> None:
    metrics = AggregatorMetrics(settings.instance)
    async with ServiceRuntime(
        settings, "aggregator", metrics, prefetch=settings.aggregator_prefetch, log_fields={}
    ) as runtime:
        folder = ResultFolder(runtime.redis, settings.names, ttl_s=settings.batch_ttl_s)
        consumer = ResultConsumer(settings, runtime.queues["results"], folder, metrics)
        runtime.start_heartbeat(AggregatorBeat, consumer.stats)
        folding = runtime.spawn(consumer.folder_loop(), name="folder")
        await consumer.start_consuming()
        runtime.log.info("aggregator_started")
        await runtime.stop.wait()
        await consumer.stop_consuming()
        await runtime.cancel(folding)
        await consumer.drain()
        runtime.log.info("aggregator_drained", **consumer.stats())


if __name__ == "__main__":
    run_service(main, load_settings())
