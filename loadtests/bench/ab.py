"""``python -m loadtests.bench.ab``: one setting's before and after, in the same run.

Two clusters side by side, alike but for the ``--before`` and ``--after`` settings (e.g.
``aggregator_ack_multiple=false`` / ``=true``), take turns at the same trivial-job
throughput run, their order swapped every round; the medians of the rates and of each
process's CPU µs per job are what a lever is kept or reverted on. The load average is
recorded next to every run.
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

from coordctl.local import ClusterState
from loadtests.bench.__main__ import cluster_run, median_by_key, run_settings
from loadtests.bench.cluster import throughput
from loadtests.bench.cpu import SHARED_NOTE, server_pids
from loadtests.harness import machine, scoped_cluster
from loadtests.reports import new_run_dir, point_latest
from shared.runtime import run_fast
from shared.settings import Settings, WorkerMode, load_settings

console = Console()
app = typer.Typer(add_completion=False)


def parse_changes(text: str) -> dict[str, str]:
    """``name=value,name=value`` -> the changes to the settings."""
    changes = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"{pair!r} is not name=value")
        changes[name.strip()] = value.strip()
    return changes


def variant(base: Settings, out: Path, label: str, changes: dict[str, str]) -> Settings:
    try:
        return run_settings(base, out, label).replace(**changes)
    except ValueError as exc:
        raise typer.BadParameter(f"{label}: {exc}") from None


def side_by_side(
    stack: ExitStack, variants: dict[str, Settings], *, workers: int, warm_jobs: int
) -> dict[str, ClusterState]:
    """One cluster per variant, all up at once (stopped with ``stack``), each warmed up by
    ``warm_jobs`` jobs before any of them is measured."""
    states = {
        label: stack.enter_context(
            scoped_cluster(settings, workers=workers, mode=WorkerMode.PROCESSES)
        )
        for label, settings in variants.items()
    }
    for state in states.values():
        run_fast(throughput(state, warm_jobs))
    return states


@app.command()
def main(
    before: Annotated[str, typer.Option(help="settings of the 'before' cluster: a=1,b=2")],
    after: Annotated[str, typer.Option(help="settings of the 'after' cluster: a=1,b=2")],
    workers: Annotated[int, typer.Option(min=1, max=8)] = 2,
    jobs: Annotated[int, typer.Option(min=100)] = 10_000,
    rounds: Annotated[int, typer.Option(min=1)] = 5,
    reports: Annotated[Path, typer.Option()] = Path("reports/bench-ab"),
) -> None:
    """Alternate the two clusters' throughput runs; print and save medians."""
    out = new_run_dir(reports)
    base = load_settings()
    variants = {
        "before": variant(base, out, "before", parse_changes(before)),
        "after": variant(base, out, "after", parse_changes(after)),
    }
    servers = server_pids(base)
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in variants}
    with ExitStack() as stack:
        states = side_by_side(stack, variants, workers=workers, warm_jobs=min(jobs, 1000))
        for index in range(rounds):
            order = list(variants) if index % 2 == 0 else list(reversed(variants))
            for label in order:
                with console.status(f"round {index + 1}: {label}"):
                    runs[label].append(cluster_run(states[label], jobs, servers))
    summary = {
        label: {
            "jobs_s": round(statistics.median(r["jobs_s"] for r in rs), 1),
            "cpu_us": median_by_key([r["cpu_us"] for r in rs]),
        }
        for label, rs in runs.items()
    }
    results = {
        "machine": machine(),
        "before": before,
        "after": after,
        "workers": workers,
        "jobs": jobs,
        "runs": runs,
        "median": summary,
        "note": SHARED_NOTE,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    point_latest(out)
    table = Table(title=f"{workers} worker(s), {rounds} rounds of {jobs:,} jobs (jobs/s, load)")
    table.add_column("round", justify="right")
    for label in variants:
        table.add_column(label, justify="right")
    for index in range(rounds):
        table.add_row(
            str(index + 1),
            *(
                f"{runs[label][index]['jobs_s']:,.0f} ({runs[label][index]['load_average']:.1f})"
                for label in variants
            ),
        )
    table.add_row("median", *(f"{summary[label]['jobs_s']:,.0f}" for label in variants))
    console.print(table)
    cpu = Table(title="CPU µs per job (medians)")
    cpu.add_column("process")
    for label in variants:
        cpu.add_column(label, justify="right")
    names = sorted({n for s in summary.values() for n in s["cpu_us"]} - {"total"})
    for name in [*names, "total"]:
        cpu.add_row(name, *(f"{summary[label]['cpu_us'].get(name, 0):,.0f}" for label in variants))
    console.print(cpu)
    console.print(f"[dim]{SHARED_NOTE}[/]\nbefore: {before}\nafter: {after}\nresults: {out}")


if __name__ == "__main__":
    app()
