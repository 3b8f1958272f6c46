"""Aggregator wiring: settings -> logging -> connect -> fold -> drain -> close."""

from __future__ import annotations

import asyncio
import contextlib

from services.aggregator.consumer import ResultConsumer
from services.aggregator.fold import ResultFolder
from shared.lifecycle import Heartbeat, stop_on_signals
from shared.logging import configure_logging
from shared.looplag import LoopLagMonitor
from shared.messaging import connect_amqp, declare_topology, settle_dead_queue
from shared.metrics import Metrics
from shared.redis_client import connect_redis
from shared.runtime import run_service
from shared.settings import Settings, load_settings


async def main(settings: Settings) -> None:
    log = configure_logging(settings, "aggregator")
    stop = asyncio.Event()
    stop_on_signals(stop)

    metrics = Metrics("aggregator", settings.instance)
    metrics_server = metrics.serve_if_enabled(
        settings.effective_metrics_host, settings.metrics_port
    )
    redis = await connect_redis(settings)
    connection = await connect_amqp(settings)
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=settings.aggregator_prefetch)
        dead_policy = await settle_dead_queue(connection, settings)
        queues = await declare_topology(channel, settings.names, dead_policy)
        folder = ResultFolder(redis, settings.names, ttl_s=settings.batch_ttl_s)
        consumer = ResultConsumer(settings, queues["results"], folder, metrics)
        lag = LoopLagMonitor(settings.loop_lag_interval_s)
        metrics.track_loop_lag(lag)
        heartbeat = Heartbeat(
            redis,
            settings.names,
            service="aggregator",
            instance=settings.instance,
            interval_s=settings.heartbeat_s,
            stats=lambda: {
                **consumer.stats(),
                "loop_lag_ms": lag.snapshot(),
                "loop_lag_recent_ms": lag.recent_snapshot(),
            },
            metrics_port=metrics_server.port if metrics_server else 0,
        )
        async with asyncio.TaskGroup() as tasks:
            background = [
                tasks.create_task(lag.run()),
                tasks.create_task(heartbeat.run()),
                tasks.create_task(consumer.folder_loop()),
            ]
            await consumer.start_consuming()
            log.info("aggregator_started")
            await stop.wait()
            await consumer.stop_consuming()
            for task in background:
                task.cancel()
        await consumer.drain()
        log.info("aggregator_drained", **consumer.stats())
        await heartbeat.remove()
    finally:
        with contextlib.suppress(Exception):
            await connection.close()
        await redis.aclose()
        if metrics_server is not None:
            metrics_server.close()
        log.info("aggregator_stopped")


if __name__ == "__main__":
    run_service(main, load_settings())
