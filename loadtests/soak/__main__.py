"""``make soak [SOAK_TIME=10m]`` / ``python -m loadtests.soak``: does state stay bounded?

A fresh local cluster (its own namespace and, by default, a private Redis so memory and
key counts are this run's alone) gets a mixed load at 60% of its measured capacity for
the whole time. Redis memory and keys, queue depths, every process's RSS and the time of a
status read are sampled; after warm-up each series must be flat. At the end every job
submitted must have been aggregated exactly once. Writes ``reports/soak/<ts>/results.json``
and ``chart.png`` (``reports/soak/latest``).
"""

from __future__ import annotations

import json
import os
import re
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from coordctl.client import GatewayError
from coordctl.local import ClusterError
from coordctl.servers import ServerUnavailable, free_port
from loadtests.charts import charts_lines
from loadtests.harness import machine, scoped_cluster
from loadtests.reports import new_run_dir, point_latest
from loadtests.soak.load import Soak, SoakPlan
from loadtests.soak.series import Sample, draw, slopes
from shared.redis_client import connect_redis
from shared.runtime import run_fast
from shared.settings import Settings, WorkerMode, load_settings

console = Console(width=None if sys.stdout.isatty() else 120)
app = typer.Typer(add_completion=False)

UNITS_S = {"s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if match is None:
        raise typer.BadParameter(f"{text!r}: use a number with s, m or h, e.g. 10m")
    return float(match.group(1)) * UNITS_S[match.group(2) or "s"]


IO_TOUCH_TTL_S = 60


def warm_up_for(duration_s: float, batch_ttl_s: int) -> float:
    """Long enough for the first batches and I/O keys to expire (state reaches its steady
    size), at most half the run."""
    return min(duration_s / 2, max(1.5 * max(batch_ttl_s, IO_TOUCH_TTL_S), duration_s / 4))


def soak_settings(
    base: Settings, run_dir: Path, *, port: int, batch_ttl_s: int, private_redis: bool
) -> Settings:
    changes: dict[str, object] = {
        "namespace": f"soak{uuid.uuid4().hex[:8]}",
        "gateway_port": port or free_port(),
        "run_dir": run_dir,
        "log_level": "warning",
        "batch_ttl_s": batch_ttl_s,
    }
    if private_redis:
        changes["redis_url"] = f"redis://127.0.0.1:{free_port()}/0"
    return base.replace(**changes)


def run_soak(
    settings: Settings,
    plan: SoakPlan,
    *,
    workers: int,
    tolerance: float,
    out: Path,
    console: Console = console,
) -> dict[str, Any]:
    """Run the soak on a scoped cluster; write and return the results (slopes judged)."""
    results: dict[str, Any] = {
        "machine": machine(),
        "plan": {**plan.__dict__, "workers": workers, "tolerance": tolerance},
        "batch_ttl_s": settings.batch_ttl_s,
    }
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with (
        scoped_cluster(settings, workers=workers, mode=WorkerMode.PROCESSES) as state,
        Progress(*columns, console=console) as progress,
    ):
        task = progress.add_task("measuring capacity", total=plan.duration_s)

        def on_capacity(capacity: float) -> None:
            progress.update(
                task,
                description=f"soak at {capacity * plan.fraction:,.0f} of {capacity:,.0f} jobs/s",
            )

        def observe(sample: Sample) -> None:
            values = sample.values
            phase = "warm-up" if sample.at_s < plan.warm_up_s else "measuring"
            progress.update(
                task,
                completed=sample.at_s,
                description=(
                    f"{phase}: redis {values['redis_used_memory_mb']:.1f} MB, "
                    f"{values['batch_keys']:.0f} batch keys, "
                    f"status read {values.get('status_read_ms', 0):.1f} ms"
                ),
            )

        async def soak() -> tuple[Soak, dict[str, Any]]:
            redis = await connect_redis(settings, attempts=3)
            try:
                run = Soak(state, redis, settings.names, plan)
                return run, await run.run(observe, on_capacity)
            finally:
                await redis.aclose()

        run, figures = run_fast(soak())
        progress.update(task, completed=plan.duration_s, description="soak done")
    tally = run.tally
    judged = slopes(run.samples, warm_up_s=plan.warm_up_s, tolerance=tolerance)
    exactly_once = (
        not tally.unfinished
        and tally.aggregated_jobs == tally.submitted_jobs
        and figures["aggregator_folded"] == tally.submitted_jobs + figures["calibration_jobs"]
    )
    results.update(
        figures,
        tally=tally.__dict__,
        exactly_once=exactly_once,
        slopes=[s.model_dump() for s in judged],
        flat=all(s.flat for s in judged),
        samples=[s.model_dump() for s in run.samples],
        load_average_at_end=list(os.getloadavg()),
    )
    results["charts"] = (
        ["chart.png"] if draw(run.samples, warm_up_s=plan.warm_up_s, path=out / "chart.png") else []
    )
    (out / "results.json").write_text(json.dumps(results, indent=2))
    point_latest(out)
    return results


def show(results: dict[str, Any], out: Path) -> None:
    table = Table(title="series after warm-up (flat: |drift| <= allowed)")
    for column in ("series", "mean", "slope /min", "drift over window", "allowed", "flat"):
        table.add_column(column, justify="right" if column != "series" else "left")
    for s in results["slopes"]:
        table.add_row(
            s["series"],
            f"{s['mean']:,.2f} {s['unit']}",
            f"{s['slope_per_min']:+.3g}",
            f"{s['drift']:+.3g}",
            f"{s['allowed']:.3g}",
            "[green]yes[/]" if s["flat"] else "[red]NO[/]",
        )
    console.print(table)
    tally = results["tally"]
    console.print(
        f"capacity {results['capacity_jobs_s']:,.0f} jobs/s, offered "
        f"{results['offered_jobs_s']:,.0f}; submitted {tally['submitted_jobs']:,} jobs in "
        f"{tally['submitted_batches']:,} batches, aggregated {tally['aggregated_jobs']:,} "
        f"(aggregator folded {results['aggregator_folded']:,} incl. "
        f"{results['calibration_jobs']:,} calibration), failed {tally['failed_jobs']}, "
        f"unfinished {len(tally['unfinished'])}: exactly once "
        + ("[green]yes[/]" if results["exactly_once"] else "[red]NO[/]")
    )
    console.print(
        f"load average at start {results['machine']['load_average_at_start']}, "
        f"at end {results['load_average_at_end']}"
    )
    console.print(f"results: {out / 'results.json'}")
    for line in charts_lines(out, results.get("charts", []), ("chart.png",)):
        console.print(line, highlight=False)


@app.command()
def main(
    time: Annotated[str, typer.Option(help="how long the load runs: 60s, 10m, 1h")] = "10m",
    workers: Annotated[int, typer.Option(min=1)] = 2,
    fraction: Annotated[float, typer.Option(min=0.05, max=1.0, help="of capacity")] = 0.6,
    every: Annotated[float, typer.Option(min=0.2, help="seconds between samples")] = 2.0,
    tolerance: Annotated[float, typer.Option(help="allowed drift / mean")] = 0.1,
    batch_ttl: Annotated[int, typer.Option(min=5, help="COORD_BATCH_TTL_S of the cluster")] = 60,
    port: Annotated[int, typer.Option(help="gateway port; 0 = a free one")] = 0,
    shared_redis: Annotated[
        bool, typer.Option(help="use COORD_REDIS_URL instead of a private Redis")
    ] = False,
    reports: Annotated[Path, typer.Option(help="where reports go")] = Path("reports/soak"),
) -> None:
    """Soak the cluster at a fraction of its capacity; judge every sampled series flat."""
    duration_s = parse_duration(time)
    out = new_run_dir(reports)
    settings = soak_settings(
        load_settings(),
        out / "cluster",
        port=port,
        batch_ttl_s=batch_ttl,
        private_redis=not shared_redis,
    )
    plan = SoakPlan(
        duration_s=duration_s,
        warm_up_s=warm_up_for(duration_s, batch_ttl),
        every_s=every,
        fraction=fraction,
    )
    try:
        results = run_soak(settings, plan, workers=workers, tolerance=tolerance, out=out)
    except (ClusterError, ServerUnavailable, OSError, RuntimeError, GatewayError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    show(results, out)
    if not (results["exactly_once"] and results["flat"]):
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
