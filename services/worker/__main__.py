"""Worker wiring: settings -> runtime -> consumer and runners -> drain on stop."""

from __future__ import annotations

from services.worker.consumer import JobConsumer
from services.worker.executors import CpuRunner
from services.worker.steps import JobSteps
from services.worker.subinterpreters import ModeUnavailable
from shared.heartbeat import WorkerBeat
from shared.metrics import WorkerMetrics
from shared.runtime import run_service
from shared.service import ServiceRuntime
from shared.settings import Settings, WorkerMode, load_settings


async def main(settings: Settings) -> None:
    mode, pool_size = settings.worker_mode, settings.effective_pool_size
    metrics = WorkerMetrics(settings.instance, mode=mode.value)
    cpu = CpuRunner(mode, pool_size)  # a mode this Python lacks fails here, before connecting
    async with ServiceRuntime(
        settings,
        "worker",
        metrics,
        prefetch=settings.effective_prefetch,
        publishing=True,
        log_fields={"mode": mode.value},
    ) as runtime:
        runtime.closing(cpu)
        await cpu.warm_up()
        steps = JobSteps(runtime.redis, settings.names, cpu, fail_n=settings.chaos_fail_n)
        jobs = runtime.queues["jobs"]
        consumer = JobConsumer(settings, runtime.channel, jobs, steps, cpu, metrics)
        metrics.track_worker(lambda: consumer.in_flight, lambda: cpu.busy)
        metrics.set_pool_size(1 if mode == WorkerMode.BLOCKING else cpu.pool_size)
        runtime.start_heartbeat(
            WorkerBeat,
            consumer.stats,
            mode=mode.value,
            pool_size=pool_size,
            runners=settings.runners,
        )
        for _ in range(settings.runners):
            runtime.spawn(consumer.runner(), name="runner")
        await consumer.start_consuming()
        log = runtime.log
        log.info("worker_started", pool_size=pool_size, runners=settings.runners)
        await runtime.stop.wait()
        await consumer.stop_consuming()
        drained = await consumer.drain(settings.drain_timeout_s)
        log.info("worker_drained", complete=drained, **consumer.stats())


if __name__ == "__main__":
    try:
        run_service(main, load_settings())
    except ModeUnavailable as exc:
        raise SystemExit(f"worker: {exc}") from None
