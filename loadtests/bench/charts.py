"""The benchmarks' charts, drawn from their results.json alone.

``make bench`` writes four beside its results: the rounds' rates against the ceiling, where
each job's CPU goes process by process, the latency distributions of the cluster and of the
bare relay, and the memory under the backlog. ``make bench-gateway`` writes the rates per
target and user count, and the 2-gateway rounds with the CPU of every process. Every chart
carries its target where the run has one, so a reader sees the verdict and how far it was.

``python -m loadtests.bench.latency`` draws the latency chart of its own rounds.
``python -m loadtests.bench.charts reports/bench/latest/results.json`` redraws a run's
charts (any of the three's) beside its results.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from loadtests.charts import pyplot

BENCH_CHARTS = ("throughput.png", "cpu_per_job.png", "latency.png", "memory.png")
GATEWAY_CHARTS = ("gateway_rates.png", "gateways.png")
PERCENTILES = list(range(101))
CLUSTER_COLOURS = {"ceiling": "tab:gray", "1": "tab:blue", "2": "tab:orange"}


Drawing = tuple[str, bool, Callable[[Path], None]]
"""A chart's file name, whether the run measured what it shows, and how to draw it there."""


def draw_each(drawings: Sequence[Drawing], folder: Path) -> list[str]:
    """Draw the charts the run has figures for into ``folder``; their names."""
    written = []
    for name, measured, draw in drawings:
        if measured:
            draw(folder / name)
            written.append(name)
    return written


def bench_charts(
    results: Mapping[str, Any], folder: Path, *, ratio_target: float, p99_target_ms: float
) -> list[str]:
    """``make bench``'s charts into ``folder``; the names of those written (none without
    matplotlib, and none a run did not measure)."""
    plt = pyplot()
    if plt is None:
        return []
    curves = {
        name: [r["cdf_ms"] for r in results.get(key, {}).get("rounds", []) if r.get("cdf_ms")]
        for name, key in (("bare relay", "broker_latency_ms"), ("cluster", "latency_ms"))
    }
    latency = results.get("latency_ms", {})
    title = (
        f"Latency at {latency.get('rate_jobs_s', 0):,.0f} jobs/s, half the best rate "
        f"({latency.get('workers', '?')} worker(s)), one curve a round"
    )
    return draw_each(
        [
            (
                "throughput.png",
                bool(results.get("rounds")),
                lambda path: throughput_chart(plt, results, path, ratio_target),
            ),
            (
                "cpu_per_job.png",
                bool(results.get("cpu_us")),
                lambda path: cpu_chart(plt, results["cpu_us"], path, results.get("note", "")),
            ),
            (
                "latency.png",
                any(curves.values()),
                lambda path: latency_chart(
                    plt, curves, path, p99_target_ms=p99_target_ms, title=title
                ),
            ),
            (
                "memory.png",
                bool(results.get("rss_series")),
                lambda path: memory_chart(plt, results["rss_series"], path),
            ),
        ],
        folder,
    )


def latency_tool_charts(
    results: Mapping[str, Any], folder: Path, *, p99_target_ms: float
) -> list[str]:
    """``python -m loadtests.bench.latency``'s chart: every run's distribution, round by
    round (the bare relay's and one cluster's, or a before and an after)."""
    plt = pyplot()
    rounds = results.get("rounds", [])
    if plt is None or not rounds:
        return []
    curves = {
        ("bare relay" if run == "relay" else run): [
            r[run]["cdf_ms"] for r in rounds if r.get(run, {}).get("cdf_ms")
        ]
        for run in rounds[0]
    }
    if not any(curves.values()):
        return []
    latency_chart(
        plt,
        curves,
        folder / "latency.png",
        p99_target_ms=p99_target_ms,
        title=(
            f"Latency at {results['rate_jobs_s']:,.0f} jobs/s, {results['workers']} worker(s), "
            "one curve a round"
        ),
    )
    return ["latency.png"]


def throughput_chart(plt: Any, results: Mapping[str, Any], path: Path, target: float) -> None:
    """Each round's ceiling and clusters side by side, the target's share of the ceiling
    marked and the round's ratio above it."""
    rounds = results["rounds"]
    figure, axis = plt.subplots(figsize=(7.5, 4.5))
    width = 0.27
    runs = [("ceiling", "bare two-hop ceiling")] + [
        (w, f"cluster, {w} worker{'s' if w != '1' else ''}") for w in ("1", "2")
    ]
    for offset, (run, label) in enumerate(runs):
        rates = [
            r["ceiling"]["jobs_s"] if run == "ceiling" else r["cluster"][run]["jobs_s"]
            for r in rounds
        ]
        axis.bar(
            [i + (offset - 1) * width for i in range(len(rounds))],
            rates,
            width,
            label=label,
            color=CLUSTER_COLOURS[run],
        )
    for index, r in enumerate(rounds):
        axis.hlines(
            target * r["ceiling"]["jobs_s"],
            index - 1.5 * width,
            index + 1.5 * width,
            colors="tab:red",
            linestyles="dashed",
            label=f"{target:.2f}x the ceiling (target)" if index == 0 else None,
        )
        top = max(r["ceiling"]["jobs_s"], *(c["jobs_s"] for c in r["cluster"].values()))
        axis.annotate(
            f"ratio {r['ratio']:.2f}", (index, top), ha="center", va="bottom", fontsize=8,
            xytext=(0, 3), textcoords="offset points",
        )  # fmt: skip
    axis.set_xticks(range(len(rounds)), [f"round {r['round']}" for r in rounds])
    axis.set_ylabel("trivial jobs/s, end to end")
    axis.set_ylim(top=axis.get_ylim()[1] * 1.08)
    axis.set_title(
        f"Cluster against the bare ceiling: median ratio {results['ratio']:.2f} "
        f"(target ≥ {target:.2f})"
    )
    axis.legend(fontsize=8, loc="lower right")
    save(plt, figure, path)


def cpu_chart(plt: Any, cpu_us: Mapping[str, Mapping[str, float]], path: Path, note: str) -> None:
    """One stacked bar a run: the µs of CPU every process spent per job (medians)."""
    runs = list(cpu_us)
    processes = sorted({p for cpu in cpu_us.values() for p in cpu} - {"total"})
    figure, axis = plt.subplots(figsize=(8.5, 1.2 + 0.9 * len(runs)))
    colours = plt.get_cmap("tab10")
    left = [0.0] * len(runs)
    for index, process in enumerate(processes):
        values = [cpu_us[run].get(process, 0.0) for run in runs]
        axis.barh(runs, values, left=left, label=process, color=colours(index % 10))
        for row, (start, value) in enumerate(zip(left, values, strict=True)):
            if value >= 0.06 * max(cpu.get("total", 1.0) for cpu in cpu_us.values()):
                axis.text(
                    start + value / 2, row, f"{value:,.0f}", ha="center", va="center",
                    fontsize=7, color="white",
                )  # fmt: skip
        left = [a + b for a, b in zip(left, values, strict=True)]
    for row, run in enumerate(runs):
        total = cpu_us[run].get("total", left[row])
        axis.text(left[row], row, f"  {total:,.0f} µs in all", va="center", fontsize=8)
    axis.invert_yaxis()
    axis.set_xlim(right=max(left) * 1.18)
    axis.set_xlabel("CPU per job, µs (median over rounds)")
    axis.set_title("Where each job's CPU goes")
    axis.legend(fontsize=7, ncol=min(5, len(processes)), loc="upper center",
                bbox_to_anchor=(0.5, -0.25 if len(runs) > 2 else -0.35))  # fmt: skip
    if note:
        figure.text(0.01, 0.01, note, fontsize=7, color="dimgray")
    save(plt, figure, path)


def latency_chart(
    plt: Any,
    curves: Mapping[str, Sequence[Sequence[float]]],
    path: Path,
    *,
    p99_target_ms: float | None,
    title: str,
) -> None:
    """Each run's latency distribution (one line a round) on a log time axis, whole on the
    left and its tail from p90 on the right, with the p99 line and the target: where the
    curves cross p99 is the figure judged."""
    figure, panels = plt.subplots(1, 2, figsize=(11, 4.5))
    colours = plt.get_cmap("tab10")
    for axis, low in zip(panels, (0, 90), strict=True):
        for index, (name, rounds) in enumerate(curves.items()):
            colour = "tab:gray" if name == "bare relay" else colours((index + 1) % 10)
            for round_index, cdf in enumerate(rounds):
                axis.plot(
                    [max(v, 0.1) for v in cdf[low:]],
                    PERCENTILES[low:],
                    color=colour,
                    linewidth=1.2,
                    alpha=0.85,
                    label=f"{name} ({len(rounds)} rounds)" if round_index == 0 else None,
                )
        axis.axhline(99, color="black", linewidth=0.6, linestyle="dotted")
        if p99_target_ms is not None:
            axis.axvline(
                p99_target_ms,
                color="tab:red",
                linestyle="dashed",
                label=f"p99 target ≤ {p99_target_ms:g} ms",
            )
        axis.set_xscale("log")
        axis.xaxis.set_major_locator(plt.LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
        axis.xaxis.set_minor_formatter(plt.NullFormatter())
        axis.set_xlabel("latency, ms")
        axis.set_ylabel("percentile")
        axis.set_ylim(low, 100.2)
    panels[0].set_title("the whole distribution", fontsize=9)
    panels[1].set_title("its tail, from p90", fontsize=9)
    panels[1].legend(fontsize=8, loc="lower right")
    figure.suptitle(title, fontsize=10)
    save(plt, figure, path)


def memory_chart(plt: Any, series: Sequence[Mapping[str, float]], path: Path) -> None:
    """Resident memory of every process while the backlog waits, each worker's limit marked."""
    names = sorted({k for sample in series for k in sample} - {"at_s"})
    figure, axis = plt.subplots(figsize=(7.5, 4.0))
    for name in names:
        points = [(s["at_s"], s[name]) for s in series if name in s]
        axis.plot([t for t, _ in points], [mb for _, mb in points], label=name, linewidth=1.2)
    axis.axhline(150, color="tab:red", linestyle="dashed", label="a worker process's limit, 150 MB")
    axis.set_ylim(0, max(160.0, max(s.get(n, 0.0) for s in series for n in names) * 1.1))
    axis.set_xlabel("seconds")
    axis.set_ylabel("RSS, MB")
    axis.set_title("Memory with the backlog waiting in the broker")
    axis.legend(fontsize=7, ncol=3, loc="lower right")
    save(plt, figure, path)


def gateway_charts(
    results: Mapping[str, Any], folder: Path, *, share_target: float, target_users: int = 100
) -> list[str]:
    """``make bench-gateway``'s charts into ``folder``; the names of those written."""
    plt = pyplot()
    if plt is None:
        return []
    return draw_each(
        [
            (
                "gateway_rates.png",
                bool(results.get("medians")),
                lambda path: rates_chart(plt, results, path, share_target, target_users),
            ),
            (
                "gateways.png",
                bool(results.get("two_gateways")),
                lambda path: gateways_chart(plt, results["two_gateways"], path),
            ),
        ],
        folder,
    )


def rates_chart(
    plt: Any, results: Mapping[str, Any], path: Path, share_target: float, target_users: int
) -> None:
    """Median req/s and p99 of every target at every user count; at the gateway's target
    user count, the share of ``publish`` it must reach."""
    rows = results["medians"]
    users = sorted({r["users"] for r in rows})
    targets = list(dict.fromkeys(r["target"] for r in rows))
    by_key = {(r["target"], r["users"]): r for r in rows}
    figure, (rates, tails) = plt.subplots(1, 2, figsize=(11, 4.5))
    width = 0.8 / len(targets)
    colours = plt.get_cmap("tab10")
    for offset, target in enumerate(targets):
        xs = [i + (offset - (len(targets) - 1) / 2) * width for i in range(len(users))]
        rows_of = [by_key.get((target, u), {}) for u in users]
        colour = colours(offset % 10)
        rates.bar(xs, [r.get("rps") or 0 for r in rows_of], width, label=target, color=colour)
        tails.bar(xs, [r.get("p99_ms") or 0 for r in rows_of], width, label=target, color=colour)
    for row in results.get("overhead", []):
        if row["baseline"] != "publish" or ("publish", row["users"]) not in by_key:
            continue
        index = users.index(row["users"])
        if row["users"] == target_users:
            rates.hlines(
                share_target * by_key[("publish", row["users"])]["rps"],
                index - 0.4,
                index + 0.4,
                colors="tab:red",
                linestyles="dashed",
                label=f"{share_target:g}x publish at {target_users} users (target)",
            )
        rates.annotate(
            f"gateway ÷ publish {row['gateway_share']}",
            (index, by_key[("publish", row["users"])]["rps"]),
            ha="center", va="bottom", fontsize=8, xytext=(0, 3), textcoords="offset points",
        )  # fmt: skip
    for axis, label in ((rates, "req/s (median of the rounds)"), (tails, "p99, ms")):
        axis.set_xticks(range(len(users)), [f"{u} users" for u in users])
        axis.set_ylabel(label)
        axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3)
    rates.set_ylim(top=rates.get_ylim()[1] * 1.08)
    rates.set_title("Single-job POST /batches, closed loop")
    tails.set_title("Their p99")
    save(plt, figure, path)


def gateways_chart(plt: Any, result: Mapping[str, Any], path: Path) -> None:
    """Each round's rate with 1 and 2 gateways against the target ratio, and the median CPU
    of every process beside them: where the cores went when the ratio falls short."""
    runs = result["runs"]
    held = result.get("gateway_cpus")
    figure, (rounds_axis, cpu_axis) = plt.subplots(
        1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [1, 1.4]}
    )
    one, two = runs["1 gateway"], runs["2 gateways"]
    positions = range(len(one))
    rounds_axis.bar([i - 0.2 for i in positions], [r["rps"] for r in one], 0.4, label="1 gateway")
    rounds_axis.bar([i + 0.2 for i in positions], [r["rps"] for r in two], 0.4, label="2 gateways")
    rounds_axis.hlines(
        [result["target"] * r["rps"] for r in one],
        [i - 0.4 for i in positions],
        [i + 0.4 for i in positions],
        colors="tab:red",
        linestyles="dashed",
        label=f"{result['target']:g}x 1 gateway (target)",
    )
    rounds_axis.set_xticks(list(positions), [f"round {i + 1}" for i in positions])
    rounds_axis.set_ylabel("req/s")
    rounds_axis.set_title(
        f"2 gateways ÷ 1 = {result['ratio']} (target ≥ {result['target']:g})"
        + (f", each held to {held:g} CPU" if held else ""),
        fontsize=10,
    )
    rounds_axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)

    processes = sorted(
        {p for rs in runs.values() for r in rs for p in r["cpu_pct"]} - {"machine (all processes)"}
    )
    colours = plt.get_cmap("tab20")
    names = list(runs)
    left = [0.0] * len(names)
    for index, process in enumerate(processes):
        values = [
            statistics.median([r["cpu_pct"].get(process, 0) for r in runs[name]]) for name in names
        ]
        cpu_axis.barh(names, values, left=left, label=process, color=colours(index % 20))
        left = [a + b for a, b in zip(left, values, strict=True)]
    capacity = result.get("cores_allow", {}) or {}
    cores_pct = capacity.get("capacity_pct")
    if cores_pct:
        cpu_axis.axvline(cores_pct, color="black", linestyle="dashed", label="every core")
    cpu_axis.invert_yaxis()
    cpu_axis.set_xlabel("% of one core (median of the rounds)")
    cpu_axis.set_title("CPU of every process")
    cpu_axis.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    save(plt, figure, path)


def save(plt: Any, figure: Any, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(
    results_json: Annotated[Path, typer.Argument(help="a benchmark's results.json")],
) -> None:
    """Redraw a ``make bench`` or ``make bench-gateway`` run's charts beside its results."""
    from loadtests.bench.__main__ import P99_TARGET_MS, RATIO_TARGET
    from loadtests.bench_gateway import PUBLISH_SHARE_TARGET, TARGET_USERS

    try:
        results = json.loads(results_json.read_text())
    except (OSError, ValueError) as exc:
        typer.echo(f"error: cannot read {results_json}: {exc}", err=True)
        raise typer.Exit(1) from None
    folder = results_json.parent
    if "runs" in results and "medians" in results:
        written = gateway_charts(
            results, folder, share_target=PUBLISH_SHARE_TARGET, target_users=TARGET_USERS
        )
    elif "median" in results and "rate_jobs_s" in results:
        written = latency_tool_charts(results, folder, p99_target_ms=P99_TARGET_MS)
    else:
        written = bench_charts(
            results, folder, ratio_target=RATIO_TARGET, p99_target_ms=P99_TARGET_MS
        )
    if not written:
        typer.echo("no charts: matplotlib is missing, or the results hold nothing to draw")
        raise typer.Exit(1)
    typer.echo("charts: " + ", ".join(str(folder / name) for name in written))


if __name__ == "__main__":
    typer.run(main)
