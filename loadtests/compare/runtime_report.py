"""The runtime section of report.md: each build's single-thread time and the threads race.

The runtime rows themselves sit in the scenario table with the others (their names end in
``@ft`` / ``@ft-gil``), so the charts draw them too.
"""

from __future__ import annotations

from loadtests.compare.results import CompareResults
from loadtests.compare.results import figure_text as num

LABELS = {
    "default": "default (this interpreter)",
    "ft": "free-threaded, GIL off",
    "ft-gil": "free-threaded, PYTHON_GIL=1",
    "gil": "GIL build of the same source",
}


def runtime_lines(results: CompareResults) -> list[str]:
    runtimes = results.runtimes
    if runtimes is None:
        return []
    if not runtimes.available:
        return ["", runtimes.note]
    base = runtimes.calibration("gil") or runtimes.calibration("default")
    base_name = "the GIL build" if base is not None and base.runtime == "gil" else "default"
    lines = [
        "",
        "## Runtimes",
        "",
        "The `@ft` rows run their workers under the free-threaded CPython that `make python-ft` "
        "builds, with the GIL off; `@ft-gil` the same binary with `PYTHON_GIL=1`. The gateway, "
        "the aggregator and this driver stay on the default interpreter. Subinterpreters run on "
        "`ft-gil`, where threads alone share one GIL. Each row's ideal uses its own runtime's "
        "time per job below, and for threads without the GIL it is the pool size up to the "
        "cores, as for a process pool.",
        "",
        "Single-thread cost: one `cpu` job on one core, timed in a process of each runtime, "
        "rounds alternating between them:",
        "",
        f"| runtime | python | GIL | CPU ms per job (median) | runs | vs {base_name} |",
        "|---|---|---|---|---|---|",
    ]
    for calibration in runtimes.calibrations:
        ratio = (
            f"{calibration.cpu_job_ms / base.cpu_job_ms - 1:+.0%}"
            if base is not None and base.cpu_job_ms > 0
            else "n/a"
        )
        lines.append(
            f"| {LABELS.get(calibration.runtime, calibration.runtime)} | {calibration.python} | "
            f"{'on' if calibration.gil else 'off'} | {num(calibration.cpu_job_ms)} | "
            f"{len(calibration.samples_ms)} | {ratio} |"
        )
    if runtimes.thread_races:
        lines += [
            "",
            "Threads race: each thread adds 1 to a shared counter by a read and a write, "
            "started together, without and with a `threading.Lock`:",
            "",
            "| runtime | python | GIL | threads x rounds | lost without a lock | lost with one |",
            "|---|---|---|---|---|---|",
        ]
        for race in runtimes.thread_races:
            lines.append(
                f"| {LABELS.get(race.runtime, race.runtime)} | {race.python} | "
                f"{'on' if race.gil else 'off'} | {race.threads} x {race.rounds:,} | "
                f"{race.unsafe.lost:,} of {race.unsafe.expected:,} | {race.safe.lost} |"
            )
    if runtimes.note:
        lines += ["", runtimes.note]
    return lines
