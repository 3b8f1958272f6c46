"""Writing a run's report: results.json, report.md, PNG charts and the ``latest`` link.

Everything is drawn from :class:`CompareResults`, so ``render(results, folder)`` can redraw
the report of any results.json.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from loadtests.charts import pyplot
from loadtests.compare.calibrate import Calibration
from loadtests.compare.results import CompareResults, ScenarioResult
from loadtests.compare.results import figure_text as _num
from loadtests.compare.runtime_report import runtime_lines
from loadtests.compare.verdicts import QUIET_STEP_SPREAD

CHARTS = ("throughput.png", "latency.png", "loop_lag.png")


def render(results: CompareResults, folder: Path) -> list[str]:
    """Write every file of the report into ``folder``; returns the charts left out, if any."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(results.model_dump_json(indent=2) + "\n")
    missing = write_charts(results, folder)
    (folder / "report.md").write_text(
        markdown(results, charts=[c for c in CHARTS if c not in missing])
    )
    return missing


def scenario_row(result: ScenarioResult) -> list[str]:
    """One row of the table, in the same columns on the terminal and in report.md."""
    if result.error is not None:
        return [result.name, result.label, "failed: " + result.error[:60], *[""] * 9]
    io_p99 = result.io_latency_ms.p99 if result.io_latency_ms else None
    return [
        result.name,
        result.label,
        str(result.jobs),
        _num(result.throughput_jobs_s),
        _num(result.ideal_jobs_s),
        _num(result.efficiency),
        _num(result.latency_ms.p50),
        _num(result.latency_ms.p99),
        _num(io_p99),
        f"{_num(result.loop_lag_ms.p99)} / {_num(result.loop_lag_ms.max)}",
        f"{_num(result.workers_cores)} of {result.cores_usable}",
        _num(result.pipeline_cpu_ms_per_job),
    ]


TERMINAL_COLUMNS = ["scenario", "jobs/s", "ideal", "eff.", "p99 ms", "I/O p99", "lag p99", "cores"]


def terminal_row(result: ScenarioResult) -> list[str]:
    """The table row that fits an 80-column terminal; report.md has every column."""
    full = scenario_row(result)
    if result.error is not None:
        return [full[0], full[2], *[""] * 6]
    return [
        full[0],
        full[3],
        full[4],
        full[5],
        full[7],
        full[8],
        _num(result.loop_lag_ms.p99),
        full[10],
    ]


COLUMNS = [
    "scenario",
    "topology",
    "jobs",
    "jobs/s",
    "ideal",
    "efficiency",
    "latency p50 ms",
    "latency p99 ms",
    "I/O p99 ms",
    "loop lag p99 / max ms",
    "workers' cores",
    "pipeline CPU ms/job",
]


def markdown(results: CompareResults, *, charts: list[str]) -> str:
    machine = results.machine
    calibration = results.calibration
    lines = [
        f"# Concurrency comparison, {results.started_at}",
        "",
        f"Machine: {machine.cores} cores ({machine.cpu_model}), {machine.implementation} "
        f"{machine.python} (GIL {'on' if machine.gil else 'off'}), {machine.platform}; "
        f"clusters started as {machine.cluster}. Load average before the run "
        f"{machine.load_average}, after {machine.load_average_after}. "
        f"Run {'--quick' if results.quick else 'full'}, "
        f"{results.duration_s:.0f} s.",
        "",
        f"Calibration: one `cpu` job (n = {calibration.n:,}) takes {calibration.cpu_job_ms} ms "
        f"of CPU on one core (median of {len(calibration.samples_ms)} runs spread over the "
        f"whole run; fastest {calibration.cpu_job_fastest_ms} ms; p90/p10 "
        f"{steadiness(calibration.step_spread)}; wall-clock "
        f"{calibration.cpu_job_wall_ms} ms, higher when the machine is busy), so one core does "
        f"{1000 / calibration.cpu_job_ms:.1f} jobs/s. Bare processes (no cluster) on all "
        f"{calibration.cores} cores count primes {_num(calibration.bare_parallel_speedup)}x as "
        f"fast as one: the machine's own limit for every all-core scenario. A bare prefork "
        f"pool (multiprocessing.Pool, one job per task) does "
        f"{_num(calibration.prefork_jobs_s)} jobs/s, an efficiency of "
        f"{_num(calibration.prefork_efficiency)}: the most a pool gets here; in its children "
        f"a job takes {_num(calibration.prefork_step_ms)} ms of CPU. The pipeline's "
        f"ceiling (`overhead`, io_ms = 0) is {_num(calibration.overhead_jobs_s)} jobs/s.",
        *runtime_lines(results),
        "",
        "## Claims",
        "",
        "| # | claim | this run | figures |",
        "|---|---|---|---|",
    ]
    for claim in results.claims:
        lines.append(f"| {claim.number} | {claim.text} | **{claim.verdict}** | {claim.evidence} |")
    lines += [
        "",
        "## Targets (strict, for a quiet machine)",
        "",
        "| target | figure | threshold | result |",
        "|---|---|---|---|",
    ]
    for target in results.targets:
        verdict = {True: "pass", False: "**fail**", None: target.note or "not measured"}[
            target.passed
        ]
        lines.append(f"| {target.name} | {_num(target.figure)} | {target.threshold} | {verdict} |")
    lines += [
        "",
        "## Scenarios",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for result in results.scenarios:
        lines.append("| " + " | ".join(scenario_row(result)) + " |")
    lines += ["", "What each scenario shows:", ""]
    lines += [f"- `{r.name}` ({r.label}): {r.lesson}." for r in results.scenarios]
    lines += ["", "CPU per process over each measured window (% of one core):", ""]
    for result in results.scenarios:
        if result.cpu_percent:
            shares = ", ".join(f"{k} {v:.0f}" for k, v in sorted(result.cpu_percent.items()))
            lines.append(f"- `{result.name}`: {shares}{pool_split(result, calibration)}")
    lines += ["", *containers_section(results)]
    if results.race is not None:
        race = results.race
        lines += [
            "",
            "## Race",
            "",
            "| variant | expected | observed | lost |",
            "|---|---|---|---|",
            f"| one loop, {race.tasks} tasks, no lock | {race.unsafe.expected} | "
            f"{race.unsafe.observed} | {race.unsafe.lost} |",
            f"| one loop, {race.tasks} tasks, asyncio.Lock | {race.safe.expected} | "
            f"{race.safe.observed} | {race.safe.lost} |",
        ]
        cross = race.cross_process
        if cross is not None:
            who = f"{cross.processes} processes x {cross.tasks_per_process} tasks"
            for text, outcome in (
                ("Redis GET then SET", cross.unsafe),
                ("GET then SET, asyncio.Lock per process", cross.local_lock),
                ("Redis INCR", cross.safe),
            ):
                lines.append(
                    f"| {who}, {text} | {outcome.expected} | {outcome.observed} | {outcome.lost} |"
                )
        elif race.cross_process_error:
            lines.append(f"\nCross-process race: {race.cross_process_error}")
    lines += ["", "## How to read it", "", *HOW_TO_READ]
    if charts:
        lines += ["", "## Charts", ""] + [f"![{c}]({c})" for c in charts]
    return "\n".join(lines) + "\n"


CONTAINER_COLUMNS = [
    "scenario",
    "topology",
    "jobs/s",
    "ideal",
    "efficiency",
    "loop lag p99 ms",
    "I/O p99 ms",
    "periods throttled",
    "throttled s",
]


def containers_section(results: CompareResults) -> list[str]:
    """Worker containers under a CPU quota, with the kernel's throttling of each."""
    lines = ["## Containers with a CPU quota", ""]
    engine = results.machine.container_engine
    if engine is None:
        return [
            *lines,
            "Not run: no container engine answers. `make up ENGINE=podman` once (or start "
            "Docker), then `make compare` again.",
        ]
    rows = [r for r in results.scenarios if r.container_cpus is not None]
    lines += [
        f"Workers in containers on {engine}, each with a CPU quota (`cpus`); "
        f"os.cpu_count() inside says {results.machine.cpu_count}. Throttling is the worker "
        "containers' `cpu.stat` over the measured window: the periods (100 ms) in which "
        "they used up their quota and every process of the container waited."
        + image_step_text(rows, results.calibration),
        "",
        "| " + " | ".join(CONTAINER_COLUMNS) + " |",
        "|" + "---|" * len(CONTAINER_COLUMNS),
    ]
    for result in rows:
        if result.error is not None:
            lines.append(f"| {result.name} | {result.label} | failed: {result.error[:80]} |")
            continue
        io_p99 = result.io_latency_ms.p99 if result.io_latency_ms else None
        t = result.throttling
        lines.append(
            "| "
            + " | ".join(
                [
                    result.name,
                    result.label,
                    _num(result.throughput_jobs_s),
                    _num(result.ideal_jobs_s),
                    _num(result.efficiency),
                    _num(result.loop_lag_ms.p99),
                    _num(io_p99),
                    "n/a" if t is None else f"{t.throttled_periods} of {t.periods}",
                    "n/a" if t is None else f"{t.throttled_s:.2f}",
                ]
            )
            + " |"
        )
    return lines


def image_step_text(rows: list[ScenarioResult], calibration: Calibration) -> str:
    """What the container rows' ideals are measured against, when their step was timed."""
    steps = [statistics.median(r.image_step_ms) for r in rows if r.image_step_ms]
    if not steps:
        return ""
    pythons = sorted({r.worker_python for r in rows if r.worker_python})
    image = f"Python {', '.join(pythons)}" if pythons else "its Python"
    low, high = _num(min(steps)), _num(max(steps))
    took = low if low == high else f"{low} to {high}"
    return (
        f" Their ideals are measured against one core's step timed in a worker container "
        f"before each row: the image runs {image}, whose step took {took} ms against this "
        f"interpreter's {_num(calibration.cpu_job_ms)} ms."
    )


HOW_TO_READ = [
    "- **ideal** is the physical limit of the scenario: for `cpu`, the cores the topology can",
    "  use (1 for a loop or threads under the GIL, the pool size up to the core count for a",
    "  pool, one per replica) times one core's jobs/s from the calibration; for `io`, the jobs",
    "  one loop holds in flight (its runner tasks) divided by their wait, capped by the",
    "  `overhead` ceiling; for `mixed`, the rate the stream offered. **efficiency** is",
    "  measured ÷ ideal.",
    "- **latency** is from submission at the gateway to the result folded by the aggregator.",
    "  In `mixed`, CPU and I/O jobs arrive together at a rate every topology can sustain, so",
    "  the I/O jobs' latency shows how long their loop kept them waiting, not a queue.",
    "- **loop lag** is how late a 50 ms sleep on the worker's loop wakes up: near zero on a",
    "  free loop, the length of the longest blocking step on a busy one.",
    "- **workers' cores** is the CPU the workers and their pools got over the window, in",
    "  cores, next to the cores the topology can use. Well below it on a CPU scenario means",
    "  other programs took the cores (such a scenario is run once more, `attempts` in",
    "  results.json), and its throughput says more about the machine than the topology.",
    "- **pipeline CPU ms/job** is the CPU every process (gateway, workers and their pools,",
    "  aggregator, and a local RabbitMQ and Redis) spent per job beyond the calibrated CPU",
    "  step: the pipeline's own work plus whatever the step costs more inside the cluster",
    "  than alone. It runs on the same cores as the pool, so a pool that fills every core",
    "  cannot exceed an efficiency of cpu_job_ms / (cpu_job_ms + pipeline CPU ms/job).",
    "- Other programs on the machine lower every figure; the report records the load average",
    "  before the run so a noisy run can be recognised.",
]


def steadiness(spread: float | None) -> str:
    """The calibration's spread beside the quiet machine's bound, to three places: 1.052 is
    not quiet, and rounded to 1.05 it would read as if it were."""
    if spread is None:
        return "n/a"
    side = "within" if spread <= QUIET_STEP_SPREAD else "above"
    return f"{spread:.3f}, {side} the {QUIET_STEP_SPREAD} of a quiet machine"


def pool_split(result: ScenarioResult, calibration: Calibration) -> str:
    """A pool scenario's pipeline CPU split: the step in a child beyond its calibrated
    time, and everything outside the children."""
    step = result.pool_step_cpu_ms_per_job
    if step is None or result.pipeline_cpu_ms_per_job is None or result.workload != "cpu":
        return ""
    if result.image_step_ms:
        # The prefork pools ran this interpreter, not the image's: no pair for these rows.
        alone, where, pair = (
            statistics.median(result.image_step_ms),
            "timed alone in a worker container of its image",
            "",
        )
    else:
        alone, where = calibration.cpu_job_ms, "calibrated alone"
        prefork, when = calibration.prefork_step_ms, "before the scenarios"
        if result.prefork_step_cpu_ms_per_job is not None:
            prefork, when = result.prefork_step_cpu_ms_per_job, "right after this scenario"
        beside = ""
        if result.prefork_jobs_s is not None:
            beside = (
                f" ({_num(result.prefork_jobs_s)} jobs/s against the pool's "
                f"{_num(result.throughput_jobs_s)})"
            )
        pair = f" and {_num(prefork)} ms in a bare prefork pool run {when}{beside}"
    extra = step - alone
    against = f"{_num(alone)} ms {where} ({extra:+.2f} ms){pair}"
    return (
        f"; the step took {_num(step)} ms of a child's CPU per job against {against}, so "
        f"{_num(result.pipeline_cpu_ms_per_job - extra)} ms of CPU per job ran "
        f"outside the pool (the pipeline figure, {_num(result.pipeline_cpu_ms_per_job)} "
        "ms/job, is counted against the calibrated step, which drifts with the machine; "
        "pool_step_cpu_ms_per_job in results.json)"
    )


def write_charts(results: CompareResults, folder: Path) -> list[str]:
    """Draw the charts with matplotlib; returns the names left out when it is missing."""
    plt = pyplot()
    if plt is None:
        return list(CHARTS)
    measured = [r for r in results.scenarios if r.error is None]
    workloads = [
        w for w in ("cpu", "io", "overhead", "mixed") if any(r.workload == w for r in measured)
    ]

    figure, axes = plt.subplots(
        1, len(workloads), figsize=(4.5 * len(workloads), 4.5), squeeze=False
    )
    for axis, workload in zip(axes[0], workloads, strict=True):
        group = [r for r in measured if r.workload == workload]
        positions = range(len(group))
        axis.bar(
            positions, [r.throughput_jobs_s for r in group], color="tab:blue", label="measured"
        )
        ideals = [r.ideal_jobs_s for r in group]
        if any(i is not None for i in ideals):
            axis.scatter(
                positions,
                [i if i is not None else float("nan") for i in ideals],
                marker="_",
                s=900,
                color="tab:red",
                label="ideal",
                zorder=3,
            )
        axis.set_xticks(
            list(positions), [r.label for r in group], rotation=30, ha="right", fontsize=8
        )
        axis.set_title(workload)
        axis.set_ylabel("jobs/s")
        axis.legend(fontsize=8)
    figure.suptitle("Throughput against the ideal")
    figure.tight_layout()
    figure.savefig(folder / "throughput.png", dpi=110)
    plt.close(figure)

    figure, axes = plt.subplots(
        1, len(workloads), figsize=(4.5 * len(workloads), 4.5), squeeze=False
    )
    quantiles = list(range(101))
    for axis, workload in zip(axes[0], workloads, strict=True):
        for result in (r for r in measured if r.workload == workload):
            curve = result.io_latency_cdf_ms if workload == "mixed" else result.latency_cdf_ms
            if curve:
                axis.plot([max(v, 0.1) for v in curve], quantiles, label=result.label)
        axis.set_xscale("log")
        axis.set_xlabel("latency ms" + (" (I/O jobs)" if workload == "mixed" else ""))
        axis.set_ylabel("percentile")
        axis.set_title(workload)
        axis.legend(fontsize=8)
    figure.suptitle("Latency distributions (submit to aggregated)")
    figure.tight_layout()
    figure.savefig(folder / "latency.png", dpi=110)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(max(6.0, 0.8 * len(measured)), 4.5))
    width = 0.27
    for offset, (field, color) in enumerate(
        (("p50", "tab:green"), ("p99", "tab:orange"), ("max", "tab:red"))
    ):
        values = [getattr(r.loop_lag_ms, field) or 0.0 for r in measured]
        axis.bar(
            [i + (offset - 1) * width for i in range(len(measured))],
            [max(v, 0.01) for v in values],
            width,
            label=field,
            color=color,
        )
    axis.set_yscale("log")
    axis.set_xticks(
        range(len(measured)), [r.name for r in measured], rotation=30, ha="right", fontsize=8
    )
    axis.set_ylabel("ms late")
    axis.set_title("Worker event-loop lag over each measured window")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(folder / "loop_lag.png", dpi=110)
    plt.close(figure)
    return []
