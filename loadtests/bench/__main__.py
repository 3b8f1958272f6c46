"""``make bench`` / ``python -m loadtests.bench``: the cluster's cost against a bare relay.

In one run on this machine: the bare aio-pika two-hop ceiling, the cluster's end-to-end
throughput for trivial ``io`` jobs (io_ms = 0) with 1 and 2 workers, per-job latency at
half the saturating rate, and worker/aggregator memory at rest and under a 10,000-job
backlog. Figures go to ``reports/bench/<timestamp>/results.json`` and ``latest``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from coordctl.local import ClusterError
from coordctl.namespace import purge_namespace
from coordctl.servers import ServerUnavailable, free_port
from loadtests.bench.ceiling import Hops, measure_ceiling
from loadtests.bench.cluster import latency_at_rate, memory_under_backlog, throughput
from loadtests.harness import machine, scoped_cluster
from loadtests.reports import new_run_dir, point_latest
from shared.runtime import run_fast
from shared.settings import Settings, WorkerMode, load_settings

console = Console()
app = typer.Typer(add_completion=False)


def run_settings(base: Settings, run_dir: Path) -> Settings:
    return base.replace(
        namespace=f"bench{uuid.uuid4().hex[:8]}",
        gateway_port=free_port(),
        run_dir=run_dir / "cluster",
        log_level="warning",
    )


def bench(
    settings: Settings, *, jobs: int, backlog_jobs: int, latency_s: float, out: Path
) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "jobs": jobs}
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        step = progress.add_task("ceiling: bare aio-pika two-hop relay", total=None)
        hops = Hops(
            settings.amqp_url.get_secret_value(),
            f"{settings.namespace}.bench.hop1",
            f"{settings.namespace}.bench.hop2",
        )
        try:
            ceiling = run_fast(measure_ceiling(hops, jobs, window=settings.publish_window))
        finally:
            run_fast(purge_namespace(settings, extra_queues=(hops.first, hops.second)))
        results["ceiling_jobs_s"] = round(ceiling.jobs_s, 1)
        progress.update(step, description=f"ceiling: {ceiling.jobs_s:,.0f} jobs/s")
        progress.stop_task(step)

        results["cluster_jobs_s"] = {}
        for workers in (1, 2):
            step = progress.add_task(f"cluster, {workers} worker(s): {jobs:,} io jobs", total=None)
            with scoped_cluster(settings, workers=workers, mode=WorkerMode.PROCESSES) as state:
                run_fast(throughput(state, min(jobs, 1000)))
                rate = run_fast(throughput(state, jobs))
            results["cluster_jobs_s"][str(workers)] = round(rate, 1)
            done = f"cluster, {workers} worker(s): {rate:,.0f} jobs/s"
            progress.update(step, description=done)
            progress.stop_task(step)

        # A fresh cluster: right after a saturating run the broker is still cleaning up
        # its message store, which would show as latency that is not the pipeline's.
        half = results["cluster_jobs_s"]["2"] / 2
        step = progress.add_task(f"latency at {half:,.0f} jobs/s", total=None)
        with scoped_cluster(settings, workers=2, mode=WorkerMode.PROCESSES) as state:
            run_fast(throughput(state, 500))
            results["latency_ms"] = run_fast(
                latency_at_rate(state, rate_jobs_s=half, seconds=latency_s, per_batch=10)
            )
            progress.update(step, description=f"memory with {backlog_jobs:,} jobs waiting")
            memory = run_fast(memory_under_backlog(state, backlog_jobs, io_ms=100))
        results["rss_mb"] = {"at_rest": memory.at_rest_mb, "peak": memory.peak_mb()}
        results["rss_series"] = [{"at_s": s.at_s, **s.mb} for s in memory.samples]
        progress.stop_task(step)
    results["ratio"] = round(results["cluster_jobs_s"]["2"] / results["ceiling_jobs_s"], 3)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    point_latest(out)
    return results


def show(results: dict[str, Any], out: Path) -> None:
    table = Table(title="make bench")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("target (2 cores)")
    table.add_row("bare two-hop ceiling", f"{results['ceiling_jobs_s']:,.0f} jobs/s", "")
    for workers, rate in results["cluster_jobs_s"].items():
        table.add_row(f"cluster, {workers} worker(s)", f"{rate:,.0f} jobs/s", "")
    table.add_row("ratio 2 workers / ceiling", f"{results['ratio']:.2f}", "≥ 0.70")
    latency = results["latency_ms"]
    table.add_row(
        f"latency p50 / p99 at {latency['rate_jobs_s']:,.0f} jobs/s",
        f"{latency['p50']:.0f} / {latency['p99']:.0f} ms",
        "p99 ≤ 50 ms",
    )
    for name, mb in results["rss_mb"]["at_rest"].items():
        peak = results["rss_mb"]["peak"].get(name, mb)
        target = "≤ 150 MB" if name.startswith("worker") and "pool" not in name else ""
        table.add_row(f"RSS {name}: rest → peak", f"{mb:.0f} → {peak:.0f} MB", target)
    console.print(table)
    series = Table(title="RSS over time with the backlog (MB)")
    names = list(results["rss_mb"]["at_rest"])
    series.add_column("s", justify="right")
    for name in names:
        series.add_column(name, justify="right")
    for sample in results["rss_series"]:
        series.add_row(f"{sample['at_s']:.1f}", *(f"{sample.get(n, 0):.0f}" for n in names))
    console.print(series)
    console.print(f"results: {out / 'results.json'}")


@app.command()
def main(
    jobs: Annotated[int, typer.Option(min=100, help="trivial jobs per throughput run")] = 20_000,
    backlog: Annotated[int, typer.Option(min=100, help="jobs waiting in the memory run")] = 10_000,
    latency_s: Annotated[float, typer.Option(help="seconds of steady load")] = 10.0,
    reports: Annotated[Path, typer.Option(help="where reports go")] = Path("reports/bench"),
) -> None:
    """Measure the ceiling, the cluster's throughput, latency and memory; print and save them."""
    out = new_run_dir(reports)
    settings = run_settings(load_settings(), out)
    try:
        results = bench(settings, jobs=jobs, backlog_jobs=backlog, latency_s=latency_s, out=out)
    except (ClusterError, ServerUnavailable, OSError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    show(results, out)


if __name__ == "__main__":
    app()
