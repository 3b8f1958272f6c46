"""Worker wiring: settings -> logging -> connect -> consume -> drain -> close."""

from __future__ import annotations

import asyncio
import contextlib

from services.worker.consumer import JobConsumer
from services.worker.executors import CpuRunner
from services.worker.steps import JobSteps
from services.worker.subinterpreters import ModeUnavailable
from shared.lifecycle import Heartbeat, stop_on_signals
from shared.logging import configure_logging
from shared.looplag import LoopLagMonitor
from shared.messaging import (
    connect_amqp,
    declare_topology,
    open_publishing_channel,
    settle_dead_queue,
)
from shared.metrics import Metrics
from shared.redis_client import connect_redis
from shared.runtime import run_service
from shared.settings import Settings, WorkerMode, load_settings


async def main(settings: Settings) -> None:
    log = configure_logging(settings, "worker", mode=settings.worker_mode.value)
    stop = asyncio.Event()
    stop_on_signals(stop)

    metrics = Metrics("worker", settings.instance, mode=settings.worker_mode.value)
    metrics_server = metrics.serve_if_enabled(
        settings.effective_metrics_host, settings.metrics_port
    )
    cpu = CpuRunner(settings.worker_mode, settings.effective_pool_size)
    await cpu.warm_up()
    redis = await connect_redis(settings)
    connection = await connect_amqp(settings)
    try:
        channel = await open_publishing_channel(connection)
        await channel.set_qos(prefetch_count=settings.effective_prefetch)
        dead_policy = await settle_dead_queue(connection, settings)
        queues = await declare_topology(channel, settings.names, dead_policy)
        steps = JobSteps(redis, settings.names, cpu, fail_n=settings.chaos_fail_n)
        consumer = JobConsumer(settings, channel, queues["jobs"], steps, cpu, metrics)
        lag = LoopLagMonitor(settings.loop_lag_interval_s)
        metrics.track_loop_lag(lag)
        metrics.track_worker(lambda: consumer.in_flight, lambda: cpu.busy)
        metrics.set_pool_size(1 if settings.worker_mode == WorkerMode.BLOCKING else cpu.pool_size)
        heartbeat = Heartbeat(
            redis,
            settings.names,
            service="worker",
            instance=settings.instance,
            interval_s=settings.heartbeat_s,
            stats=lambda: {
                **consumer.stats(),
                "loop_lag_ms": lag.snapshot(),
                "loop_lag_recent_ms": lag.recent_snapshot(),
            },
            mode=settings.worker_mode.value,
            metrics_port=metrics_server.port if metrics_server else 0,
            pool_size=settings.effective_pool_size,
            runners=settings.runners,
        )
        async with asyncio.TaskGroup() as tasks:
            background = [
                tasks.create_task(lag.run()),
                tasks.create_task(heartbeat.run()),
                *(tasks.create_task(consumer.runner()) for _ in range(settings.runners)),
            ]
            await consumer.start_consuming()
            log.info(
                "worker_started",
                pool_size=settings.effective_pool_size,
                runners=settings.runners,
            )
            await stop.wait()
            await consumer.stop_consuming()
            drained = await consumer.drain(settings.drain_timeout_s)
            log.info("worker_drained", complete=drained, **consumer.stats())
            for task in background:
                task.cancel()
        await heartbeat.remove()
    finally:
        with contextlib.suppress(Exception):
            await connection.close()
        await redis.aclose()
        cpu.close()
        if metrics_server is not None:
            metrics_server.close()
        log.info("worker_stopped")


if __name__ == "__main__":
    try:
        run_service(main, load_settings())
    except ModeUnavailable as exc:
        raise SystemExit(f"worker: {exc}") from None
