"""``python -m loadtests.bench.latency --rate N``: per-job latency at a set rate, on its own.

The latency phase of ``make bench`` without the throughput rounds before it: a fresh cluster
(its own namespace, ``--workers`` workers in processes), warmed up by 500 jobs, then batches
of ``--per-batch`` trivial ``io`` jobs at ``--rate`` jobs/s for ``--seconds``, each job timed
from the gateway's stamp to its fold. With ``--relay`` (the default) each round also sends
the same messages at the same rate through the bare two-hop relay of the ceiling, timed from
publish to sink: the broker's own latency, which the cluster cannot beat. ``--before`` and
``--after`` (``name=value,...``, as for ``loadtests.bench.ab``) run two clusters alike but for
those settings instead of one. ``--rounds`` alternates the runs, their order swapped every
round; every run's figures and the medians are printed with the load average and saved in
``reports/latency/<timestamp>/results.json``, the services' logs beside it. Each cluster run
is also split by hop from those logs (:mod:`loadtests.bench.hops`), and their ``gc_pause``
lines inside it are counted.
"""

from __future__ import annotations

import json
import statistics
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from loadtests.bench.__main__ import P99_TARGET_MS, latency_rounds, load_average, run_settings
from loadtests.bench.ab import parse_changes, side_by_side, variant
from loadtests.bench.charts import latency_tool_charts
from loadtests.bench.headroom import headroom_lines, median_headroom, read_cluster_run
from loadtests.bench.hops import HOPS
from loadtests.bench.latencies import median_figures
from loadtests.charts import charts_lines
from loadtests.harness import machine
from loadtests.reports import new_run_dir, point_latest
from shared.settings import load_settings

console = Console()
app = typer.Typer(add_completion=False)

Figures = dict[str, Any]
WARMUP_S = 1.0
"""The first second of a run is not counted, in the latency as in the hops."""


def show(rounds: list[dict[str, Figures]]) -> None:
    table = Table(title="latency, ms (gateway stamp → fold; relay: publish → sink)")
    for column in ("round", "run", "jobs", "p50", "p95", "p99", "sender late p99", "load avg"):
        table.add_column(column, justify="right")
    for index, round_ in enumerate(rounds, start=1):
        for run, f in round_.items():
            table.add_row(
                str(index),
                run,
                f"{f['jobs']:,}",
                *(
                    f"{f[q]:.1f}" if f[q] is not None else ""
                    for q in ("p50", "p95", "p99", "sender_late_ms_p99")
                ),
                f"{f['load_average']:.1f}",
            )
    for run in rounds[0]:
        m = median_figures([r[run] for r in rounds])
        table.add_row(
            "median",
            run,
            f"{m.get('jobs', 0):,.0f}",
            *(f"{m[q]:.1f}" if q in m else "" for q in ("p50", "p95", "p99", "sender_late_ms_p99")),
            f"{m['load_average']:.1f}",
            style="bold",
        )
    console.print(table)


def show_hops(rounds: list[dict[str, Figures]], runs: list[str]) -> None:
    table = Table(title="by hop, ms, from the services' log lines (medians over rounds)")
    for column in ("run", "hop", "p50", "p99", "slowest 1%: mean"):
        table.add_column(column, justify="right")
    for run in runs:
        for hop in HOPS:
            figures = [r[run]["hops_ms"][hop] for r in rounds if r[run].get("hops_ms")]
            if figures:
                table.add_row(
                    run,
                    hop,
                    *(
                        f"{statistics.median(f[key] for f in figures):.1f}"
                        for key in ("p50", "p99", "slowest_1pct_mean")
                    ),
                )
    console.print(table)


def show_headroom(rounds: list[dict[str, Figures]], runs: list[str]) -> None:
    relay = median_headroom([r["relay"] for r in rounds if "relay" in r])
    for run in runs:
        figures = [r[run] for r in rounds]
        for line in headroom_lines(median_headroom(figures), relay, figures):
            console.print(f"{run}: {line}", highlight=False)


def show_gc_pauses(rounds: list[dict[str, Figures]], runs: list[str]) -> None:
    for run in runs:
        pauses: dict[str, list[float]] = {}
        for round_ in rounds:
            for service, ms in round_[run].get("gc_pauses_ms", {}).items():
                pauses.setdefault(service, []).extend(ms)
        listed = ", ".join(
            f"{name} {len(ms)} (longest {max(ms):.0f} ms of CPU)" for name, ms in pauses.items()
        )
        console.print(f"{run}: logged collector pauses during its runs: {listed or 'none'}")


@app.command()
def main(
    rate: Annotated[float, typer.Option(min=1, help="jobs per second offered")] = 325.0,
    seconds: Annotated[float, typer.Option(min=1, help="seconds of steady load a round")] = 10.0,
    workers: Annotated[int, typer.Option(min=1, help="workers in each cluster")] = 2,
    per_batch: Annotated[int, typer.Option(min=1, help="jobs per submitted batch")] = 10,
    rounds: Annotated[int, typer.Option(min=1, help="alternating rounds; 3+ for a median")] = 1,
    relay: Annotated[bool, typer.Option(help="also time the bare relay at the rate")] = True,
    before: Annotated[str, typer.Option(help="with --after: two clusters, a=1,b=2")] = "",
    after: Annotated[str, typer.Option(help="with --before: the other cluster's settings")] = "",
    log_level: Annotated[str, typer.Option(help="the services' log level")] = "info",
    reports: Annotated[Path, typer.Option(help="where reports go")] = Path("reports/latency"),
) -> None:
    """Print per-job latency percentiles of the cluster(s) (and of the bare relay) at a rate."""
    out = new_run_dir(reports)
    base = load_settings(log_level=log_level)
    variants = (
        {
            "before": variant(base, out, "before", parse_changes(before)),
            "after": variant(base, out, "after", parse_changes(after)),
        }
        if before or after
        else {"cluster": run_settings(base, out)}
    )
    order = ["relay", *variants] if relay else list(variants)
    with ExitStack() as stack:
        states = side_by_side(stack, variants, workers=workers, warm_jobs=500)
        with console.status("latency") as status:
            results = latency_rounds(
                states,
                run_settings(base, out, "relay") if relay else None,
                rate=rate,
                seconds=seconds,
                rounds=rounds,
                progress=status.update,
                per_batch=per_batch,
                warmup_s=WARMUP_S,
            )
    for run, settings in variants.items():
        logs = settings.run_dir / "logs"
        for round_ in results:
            read_cluster_run(round_[run], logs, per_batch=per_batch)
    medians_by_run = {
        run: median_figures([r[run] for r in results])
        | {"headroom": median_headroom([r[run] for r in results])}
        for run in order
    }
    saved: dict[str, Any] = {
        "machine": machine(),
        "rate_jobs_s": rate,
        "seconds": seconds,
        "per_batch": per_batch,
        "workers": workers,
        "before": before,
        "after": after,
        "rounds": results,
        "median": medians_by_run,
    }
    charts = latency_tool_charts(saved, out, p99_target_ms=P99_TARGET_MS)
    (out / "results.json").write_text(json.dumps(saved | {"charts": charts}, indent=2))
    point_latest(out)
    show(results)
    show_hops(results, list(variants))
    show_gc_pauses(results, list(variants))
    show_headroom(results, list(variants))
    console.print(
        f"{rate:,.0f} jobs/s in batches of {per_batch}, {workers} worker(s), {seconds:.0f} s a"
        f" round; load {load_average():.1f} at the end; results and logs in {out}"
    )
    for line in charts_lines(out, charts, ("latency.png",)):
        console.print(line, highlight=False)
    if before or after:
        console.print(f"before: {before}\nafter: {after}")


if __name__ == "__main__":
    app()
