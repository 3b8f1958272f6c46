"""The job steps: CPU steps run in the CpuRunner's pool, yet are timed and counted here."""

import asyncio
import os

from services.worker.executors import CpuRunner
from services.worker.steps import JobSteps
from shared.jobs import Job, JobKind
from shared.metrics import WorkerMetrics
from shared.names import Names
from shared.settings import WorkerMode

WORKER = {"service": "worker", "instance": "w1", "mode": "processes"}


async def test_process_pool_figures_are_complete_without_multiprocess_mode() -> None:
    """CPU steps run in pool processes, yet every one is counted: timing stays in this process."""
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    metrics = WorkerMetrics("w1", mode="processes", process_metrics=False)
    cpu = CpuRunner(WorkerMode.PROCESSES, 2)
    try:
        steps = JobSteps(None, Names("unit"), cpu)  # type: ignore[arg-type]  # cpu jobs use no Redis
        jobs = [
            Job(
                job_id=f"b.{i}",
                batch_id="b",
                kind=JobKind.CPU,
                n=20_000,
                io_ms=0,
                submitted_at=0.0,
                trace_id="t",
            )
            for i in range(12)
        ]
        for value, durations in await asyncio.gather(*(steps.run(job) for job in jobs)):
            assert value == 2262
            metrics.job_completed("cpu", durations)
    finally:
        cpu.close()
    labels = {**WORKER, "kind": "cpu"}
    assert metrics.registry.get_sample_value("coord_jobs_completed_total", labels) == 12
    assert (
        metrics.registry.get_sample_value(
            "coord_step_duration_seconds_count", {**labels, "step": "cpu"}
        )
        == 12
    )
