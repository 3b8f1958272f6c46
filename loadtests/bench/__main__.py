"""``make bench`` / ``python -m loadtests.bench``: the cluster's cost against a bare relay.

In one run on this machine, ``--rounds`` alternating rounds of: the bare aio-pika two-hop
ceiling, then the cluster's end-to-end throughput for trivial ``io`` jobs (io_ms = 0) with 1
and 2 workers (two clusters kept up side by side, their order swapped every round). The ratio
of a round is the better cluster over that round's ceiling; the medians are the figures.
psutil reads every process's CPU time around each run (µs per job). Then per-job latency at
half the saturating rate on a fresh cluster, in as many rounds alternating with the bare
relay at the same rate (the broker's own, which the cluster cannot beat), their medians the
figures; and memory under a 10,000-job backlog. Every round goes to
``reports/bench/<timestamp>/results.json`` (and ``latest``).
"""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from coordctl.local import ClusterError, ClusterState
from coordctl.namespace import purge_namespace
from coordctl.servers import ServerUnavailable, free_port
from loadtests.bench.ceiling import Hops, measure_ceiling, relay_latency
from loadtests.bench.charts import BENCH_CHARTS, bench_charts
from loadtests.bench.cluster import latency_at_rate, memory_under_backlog, throughput
from loadtests.bench.cpu import SHARED_NOTE, CpuMeter, cluster_pids, server_pids
from loadtests.bench.headroom import (
    CpuBusySampler,
    busy_summary,
    headroom_lines,
    median_headroom,
    read_cluster_run,
)
from loadtests.bench.latencies import median_figures
from loadtests.charts import charts_lines
from loadtests.harness import machine, scoped_cluster
from loadtests.reports import new_run_dir, point_latest
from shared.runtime import run_fast
from shared.settings import Settings, WorkerMode, load_settings

console = Console()
app = typer.Typer(add_completion=False)

WORKER_COUNTS = (1, 2)
RATIO_TARGET = 0.80
LATENCY_PER_BATCH = 10
P99_TARGET_MS = 20.0


def run_settings(base: Settings, run_dir: Path, name: str = "cluster") -> Settings:
    """A cluster of its own; at the base's log level (info: the guarantee of a line per job
    is part of the cost measured)."""
    return base.replace(
        namespace=f"bench{uuid.uuid4().hex[:8]}",
        gateway_port=free_port(),
        run_dir=run_dir / name,
    )


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def median_by_key(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = {key for row in rows for key in row}
    return {key: round(statistics.median(row.get(key, 0.0) for row in rows), 1) for key in keys}


def worker_orders(rounds: int) -> Iterator[tuple[int, ...]]:
    """1 then 2 workers, then 2 then 1: neither count always runs right after the ceiling."""
    for index in range(rounds):
        yield WORKER_COUNTS if index % 2 == 0 else tuple(reversed(WORKER_COUNTS))


def ceiling_round(settings: Settings, jobs: int, servers: dict[str, int]) -> dict[str, Any]:
    hops = Hops.of(settings, "bench")
    load = load_average()
    try:
        ceiling = run_fast(
            measure_ceiling(hops, jobs, window=settings.publish_window, servers=servers)
        )
    finally:
        run_fast(purge_namespace(settings, extra_queues=(hops.first, hops.second)))
    return {"jobs_s": round(ceiling.jobs_s, 1), "load_average": load, "cpu_us": ceiling.cpu_us}


def broker_latency(
    settings: Settings, *, rate: float, seconds: float, per_batch: int
) -> dict[str, Any]:
    """The bare relay's per-message latency at ``rate``, in the settings' namespace (purged
    after): the broker's own, the limit under the cluster's."""
    hops = Hops.of(settings, "latency")
    load = load_average()
    try:
        figures = run_fast(
            relay_latency(
                hops,
                rate_jobs_s=rate,
                seconds=seconds,
                per_batch=per_batch,
                window=settings.publish_window,
            )
        )
    finally:
        run_fast(purge_namespace(settings, extra_queues=(hops.first, hops.second)))
    return figures | {"load_average": load}


def cluster_run(state: ClusterState, jobs: int, servers: dict[str, int]) -> dict[str, Any]:
    meter = CpuMeter(cluster_pids(state) | servers)
    load = load_average()
    before = meter.read()
    rate = run_fast(throughput(state, jobs))
    cpu_us = CpuMeter.per_job_us(before, meter.read(), jobs)
    return {"jobs_s": round(rate, 1), "load_average": load, "cpu_us": cpu_us}


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds: rates, the ratio, each process's µs per job, and the rate
    the cores allow at that total CPU per job."""
    rates = {
        str(w): round(statistics.median(r["cluster"][str(w)]["jobs_s"] for r in rounds), 1)
        for w in WORKER_COUNTS
    }
    cpu_us = {
        "ceiling": median_by_key([r["ceiling"]["cpu_us"] for r in rounds]),
        **{
            f"{w} worker(s)": median_by_key([r["cluster"][str(w)]["cpu_us"] for r in rounds])
            for w in WORKER_COUNTS
        },
    }
    cores = os.cpu_count() or 1
    return {
        "ceiling_jobs_s": round(statistics.median(r["ceiling"]["jobs_s"] for r in rounds), 1),
        "cluster_jobs_s": rates,
        "ratio": round(statistics.median(r["ratio"] for r in rounds), 3),
        "best_workers": int(max(rates, key=lambda w: rates[w])),
        "two_ge_one_rounds": sum(
            r["cluster"]["2"]["jobs_s"] >= r["cluster"]["1"]["jobs_s"] for r in rounds
        ),
        "cpu_us": cpu_us,
        "cpu_bound_jobs_s": {
            run: round(cores * 1e6 / cpu["total"], 1)
            for run, cpu in cpu_us.items()
            if cpu.get("total")
        },
    }


def bench(
    settings: Settings,
    *,
    jobs: int,
    rounds: int,
    backlog_jobs: int,
    latency_s: float,
    out: Path,
) -> dict[str, Any]:
    servers = server_pids(settings)
    results: dict[str, Any] = {
        "machine": machine(),
        "jobs": jobs,
        "servers": servers,
        "note": SHARED_NOTE,
        "rounds": [],
    }
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress, ExitStack() as clusters:
        step = progress.add_task("starting a 1-worker and a 2-worker cluster", total=None)
        states = {
            w: clusters.enter_context(
                scoped_cluster(
                    run_settings(settings, out, f"cluster-{w}w"),
                    workers=w,
                    mode=WorkerMode.PROCESSES,
                )
            )
            for w in WORKER_COUNTS
        }
        for state in states.values():
            run_fast(throughput(state, min(jobs, 1000)))
        progress.stop_task(step)
        for index, order in enumerate(worker_orders(rounds), start=1):
            step = progress.add_task(f"round {index}: ceiling", total=None)
            round_: dict[str, Any] = {
                "round": index,
                "ceiling": ceiling_round(settings, jobs, servers),
                "cluster": {},
            }
            for w in order:
                progress.update(step, description=f"round {index}: {w} worker(s)")
                round_["cluster"][str(w)] = cluster_run(states[w], jobs, servers)
            best = max(r["jobs_s"] for r in round_["cluster"].values())
            round_["ratio"] = round(best / round_["ceiling"]["jobs_s"], 3)
            results["rounds"].append(round_)
            progress.update(step, description=f"round {index}: ratio {round_['ratio']:.2f}")
            progress.stop_task(step)
        clusters.close()
        results.update(summarize(results["rounds"]))

        # A fresh cluster: right after a saturating run the broker is still cleaning up
        # its message store, which would show as latency that is not the pipeline's.
        best_workers = results["best_workers"]
        half = results["cluster_jobs_s"][str(best_workers)] / 2
        step = progress.add_task(f"latency at {half:,.0f} jobs/s", total=None)
        fresh = run_settings(settings, out)
        with scoped_cluster(fresh, workers=best_workers, mode=WorkerMode.PROCESSES) as state:
            run_fast(throughput(state, 500))
            measured = latency_rounds(
                {"cluster": state},
                run_settings(settings, out, "relay"),
                rate=half,
                seconds=latency_s,
                rounds=rounds,
                progress=lambda text: progress.update(step, description=text),
            )
            for round_ in measured:
                read_cluster_run(
                    round_["cluster"], fresh.run_dir / "logs", per_batch=LATENCY_PER_BATCH
                )
            runs = {run: [r[run] for r in measured] for run in ("relay", "cluster")}
            results["broker_latency_ms"] = median_figures(runs["relay"]) | {
                "headroom": median_headroom(runs["relay"]),
                "rounds": runs["relay"],
            }
            results["latency_ms"] = median_figures(runs["cluster"]) | {
                "rate_jobs_s": round(half, 1),
                "workers": best_workers,
                "headroom": median_headroom(runs["cluster"]),
                "rounds": runs["cluster"],
            }
            progress.update(step, description=f"memory with {backlog_jobs:,} jobs waiting")
            memory = run_fast(memory_under_backlog(state, backlog_jobs, io_ms=100))
        results["rss_mb"] = {"at_rest": memory.at_rest_mb, "peak": memory.peak_mb()}
        results["rss_series"] = [{"at_s": s.at_s, **s.mb} for s in memory.samples]
        progress.stop_task(step)
    results["load_average_at_end"] = load_average()
    results["charts"] = bench_charts(
        results, out, ratio_target=RATIO_TARGET, p99_target_ms=P99_TARGET_MS
    )
    (out / "results.json").write_text(json.dumps(results, indent=2))
    point_latest(out)
    return results


def latency_rounds(
    states: Mapping[str, ClusterState],
    relay: Settings | None,
    *,
    rate: float,
    seconds: float,
    rounds: int,
    progress: Callable[[str], object],
    per_batch: int = LATENCY_PER_BATCH,
    warmup_s: float = 1.0,
) -> list[dict[str, dict[str, Any]]]:
    """``rounds`` rounds of the bare relay (unless ``relay`` is None) and of each cluster at
    ``rate``, their order swapped every round: each round's figures by run. A cluster's carry
    ``window``, the epoch seconds its latency counts (after ``warmup_s``), to read its logs
    (:func:`~loadtests.bench.headroom.read_cluster_run`), and ``cpu_busy``, the machine's CPU
    use meanwhile; the relay's carry that CPU use's summary."""
    order = (["relay"] if relay is not None else []) + list(states)
    results: list[dict[str, dict[str, Any]]] = []
    for index in range(rounds):
        round_: dict[str, dict[str, Any]] = {}
        for run in order if index % 2 == 0 else reversed(order):
            progress(f"latency at {rate:,.0f} jobs/s, round {index + 1}: {run}")
            if relay is not None and run == "relay":
                with CpuBusySampler() as machine_cpu:
                    figures = broker_latency(relay, rate=rate, seconds=seconds, per_batch=per_batch)
                round_[run] = figures | {"headroom": busy_summary(machine_cpu.samples)}
                continue
            load, began = load_average(), time.time()
            with CpuBusySampler() as machine_cpu:
                figures = run_fast(
                    latency_at_rate(
                        states[run],
                        rate_jobs_s=rate,
                        seconds=seconds,
                        per_batch=per_batch,
                        warmup_s=warmup_s,
                    )
                )
            round_[run] = figures | {
                "load_average": load,
                "window": (began + warmup_s, time.time()),
                "cpu_busy": [sample.as_list() for sample in machine_cpu.samples],
            }
        results.append({run: round_[run] for run in order})
    return results


def round_p99s(figures: dict[str, Any]) -> str:
    """Each round's p99 in ms, in the order they ran."""
    values = [r.get("p99") for r in figures.get("rounds", [])]
    return ", ".join("-" if v is None else f"{v:.0f}" for v in values)


def round_headroom_p99s(figures: dict[str, Any]) -> str:
    """Each round's p99 from the logs, every job / the jobs that met no saturated machine."""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    return ", ".join(
        f"{ms(h.get('p99_all_ms'))}/{ms(h.get('p99_with_headroom_ms'))}"
        for h in (r.get("headroom", {}) for r in figures.get("rounds", []))
    )


def verdict(met: bool) -> str:
    return "[green]met[/]" if met else "[red]missed[/]"


def show_rounds(results: dict[str, Any]) -> None:
    table = Table(title=f"make bench: {len(results['rounds'])} rounds of {results['jobs']:,} jobs")
    for column in ("round", "ceiling", "1 worker", "2 workers", "ratio (best)", "load avg"):
        table.add_column(column, justify="right")
    for r in results["rounds"]:
        table.add_row(
            str(r["round"]),
            f"{r['ceiling']['jobs_s']:,.0f}",
            f"{r['cluster']['1']['jobs_s']:,.0f}",
            f"{r['cluster']['2']['jobs_s']:,.0f}",
            f"{r['ratio']:.2f}",
            " / ".join(
                f"{x:.1f}"
                for x in (
                    r["ceiling"]["load_average"],
                    r["cluster"]["1"]["load_average"],
                    r["cluster"]["2"]["load_average"],
                )
            ),
        )
    console.print(table)


def show_cpu(results: dict[str, Any]) -> None:
    runs = results["cpu_us"]
    table = Table(title="CPU per job, µs (median over rounds)")
    table.add_column("process")
    for run in runs:
        table.add_column(run, justify="right")
    names = [*sorted({name for cpu in runs.values() for name in cpu} - {"total"}), "total"]
    for name in names:
        table.add_row(name, *(f"{cpu[name]:,.0f}" if name in cpu else "" for cpu in runs.values()))
    cores = os.cpu_count() or 1
    table.add_row(
        f"{cores} cores ÷ total (jobs/s)",
        *(f"{cores * 1e6 / c['total']:,.0f}" if c.get("total") else "" for c in runs.values()),
    )
    console.print(table)
    console.print(
        f"[dim]{results['note']}. On {cores} busy cores a run's rate is about {cores} s of CPU"
        " ÷ its total CPU per job: a second worker pays only if the total per job does not"
        " rise, and the cores are not already busy with the broker, gateway and aggregator.[/]"
    )


def show(results: dict[str, Any], out: Path) -> None:
    show_rounds(results)
    show_cpu(results)
    table = Table(title="targets (2 cores)")
    for column in ("figure", "value", "target", ""):
        table.add_column(column, justify="right" if column == "value" else "left")
    rates = results["cluster_jobs_s"]
    table.add_row(
        "bare two-hop ceiling (median)", f"{results['ceiling_jobs_s']:,.0f} jobs/s", "", ""
    )
    for workers, rate in rates.items():
        table.add_row(f"cluster, {workers} worker(s) (median)", f"{rate:,.0f} jobs/s", "", "")
    table.add_row(
        f"ratio, best cluster / ceiling (median of {len(results['rounds'])})",
        f"{results['ratio']:.2f}",
        f"≥ {RATIO_TARGET:.2f}",
        verdict(results["ratio"] >= RATIO_TARGET),
    )
    table.add_row(
        "two workers / one (medians)",
        f"{rates['2'] / rates['1']:.2f}"
        f" ({results['two_ge_one_rounds']} of {len(results['rounds'])} rounds)",
        "≥ 1.00",
        verdict(rates["2"] >= rates["1"]),
    )
    latency = results["latency_ms"]
    p99 = latency["p99"]
    broker = results.get("broker_latency_ms", {})
    limit = broker.get("p99")
    table.add_row(
        f"bare relay latency p50 / p99 at {latency['rate_jobs_s']:,.0f} jobs/s,"
        f" load {broker.get('load_average', 0):.1f} (the broker's own; p99s "
        f"{round_p99s(broker)})",
        f"{broker['p50']:.0f} / {limit:.0f} ms" if limit is not None else "",
        "",
        "",
    )
    table.add_row(
        f"latency p50 / p99 at {latency['rate_jobs_s']:,.0f} jobs/s, "
        f"{latency['workers']} worker(s), load {latency['load_average']:.1f} (medians of "
        f"{len(latency.get('rounds', []))} alternating rounds; p99s {round_p99s(latency)})",
        f"{latency['p50']:.0f} / {p99:.0f} ms" if p99 is not None else "no jobs",
        f"p99 ≤ {P99_TARGET_MS:.0f} ms"
        + (
            f" (the broker alone: {limit:.0f})"
            if limit is not None and limit > P99_TARGET_MS
            else ""
        ),
        verdict(p99 is not None and p99 <= P99_TARGET_MS),
    )
    headroom = latency.get("headroom", {})
    if "p99_with_headroom_ms" in headroom:
        clear = headroom["p99_with_headroom_ms"]
        table.add_row(
            "latency p99 from the logs, every job / the jobs that never met a saturated"
            f" machine (medians; rounds {round_headroom_p99s(latency)}; see below)",
            f"{headroom['p99_all_ms']:.0f} / "
            + (f"{clear:.0f} ms" if clear is not None else "none"),
            "",
            "",
        )
    for name, mb in results["rss_mb"]["at_rest"].items():
        peak = results["rss_mb"]["peak"].get(name, mb)
        target = "≤ 150 MB" if name.startswith("worker") and "pool" not in name else ""
        table.add_row(f"RSS {name}: rest → peak", f"{mb:.0f} → {peak:.0f} MB", target, "")
    console.print(table)
    for line in headroom_lines(headroom, broker.get("headroom"), latency.get("rounds", [])):
        console.print(f"[dim]{line}[/]")
    if "memory.png" not in results.get("charts", []):
        series = Table(title="RSS over time with the backlog (MB)")
        names = list(results["rss_mb"]["at_rest"])
        series.add_column("s", justify="right")
        for name in names:
            series.add_column(name, justify="right")
        for sample in results["rss_series"]:
            series.add_row(f"{sample['at_s']:.1f}", *(f"{sample.get(n, 0):.0f}" for n in names))
        console.print(series)
    console.print(f"results: {out / 'results.json'}")
    for line in charts_lines(out, results.get("charts", []), BENCH_CHARTS):
        console.print(line, highlight=False)


@app.command()
def main(
    jobs: Annotated[int, typer.Option(min=100, help="trivial jobs per throughput run")] = 20_000,
    rounds: Annotated[int, typer.Option(min=1, help="alternating rounds; 3+ for a median")] = 3,
    backlog: Annotated[int, typer.Option(min=100, help="jobs waiting in the memory run")] = 10_000,
    latency_s: Annotated[float, typer.Option(help="seconds of steady load")] = 10.0,
    reports: Annotated[Path, typer.Option(help="where reports go")] = Path("reports/bench"),
    log_level: Annotated[
        str, typer.Option(help="the services' log level; info keeps a line per job")
    ] = "info",
) -> None:
    """Measure the ceiling, the cluster's throughput, latency and memory; print and save them."""
    out = new_run_dir(reports)
    try:
        settings = run_settings(load_settings(log_level=log_level), out)
    except ValidationError as exc:
        first = exc.errors()[0]
        console.print(f"[bold red]error:[/] {first['loc'][0]}: {first['msg']}")
        raise typer.Exit(1) from None
    try:
        results = bench(
            settings,
            jobs=jobs,
            rounds=rounds,
            backlog_jobs=backlog,
            latency_s=latency_s,
            out=out,
        )
    except (ClusterError, ServerUnavailable, OSError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    show(results, out)


if __name__ == "__main__":
    app()
