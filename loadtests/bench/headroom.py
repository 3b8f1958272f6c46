"""Whether a latency round's slowest jobs met a machine with no CPU to spare.

At half the saturating rate the cluster keeps about half of the cores busy. When a VM's host
slows its vCPUs down for a moment (other tenants, shared caches), the same work fills every
core, every process waits for a core, and every hop of every job in flight slows at once: a
tail that is the machine's, not the pipeline's. To tell the two apart, a thread samples the
machine's CPU use every 100 ms during each run (:class:`CpuBusySampler`), and each job's
flight, from its publish to its fold (read from the services' logs, :mod:`.hops`), is
matched against the saturated samples (:func:`headroom_split`): the share of the slowest 1%
that met one, and the p99 of the jobs that never did.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psutil

from loadtests.bench.hops import JobHops, gc_pauses, job_hops, nearest_rank, slowest_percent
from loadtests.bench.hops import summarize as summarize_hops

SATURATED = 0.95
"""A sample in which the CPUs were at least this busy left no core free for a woken
process: it waited for one."""
SAMPLE_S = 0.1


@dataclass(frozen=True)
class BusySample:
    since: float
    """Epoch seconds at the start of the sample."""
    at: float
    """Epoch seconds at its end: about ``SAMPLE_S`` later, more when the thread waited for
    the interpreter."""
    busy: float
    """Share of every core's time spent on anything but idling, over the sample."""
    steal: float
    """Share the hypervisor gave to other guests (0 where the kernel does not tell)."""

    def as_list(self) -> list[float]:
        return [round(self.since, 3), round(self.at, 3), round(self.busy, 3), round(self.steal, 3)]


def busy_shares(before: Any, after: Any) -> tuple[float, float]:
    """Busy and steal shares between two ``psutil.cpu_times()``."""
    spent = {field: getattr(after, field) - getattr(before, field) for field in after._fields}
    total = sum(spent.values())
    if total <= 0:
        return 0.0, 0.0
    idle = spent.get("idle", 0.0) + spent.get("iowait", 0.0)
    return (total - idle) / total, spent.get("steal", 0.0) / total


class CpuBusySampler:
    """The machine's CPU use every ``interval_s`` while the ``with`` block runs, in a thread
    of its own (a few µs of CPU per sample)."""

    def __init__(self, interval_s: float = SAMPLE_S) -> None:
        self.interval_s = interval_s
        self.samples: list[BusySample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-busy", daemon=True)

    def _run(self) -> None:
        before, since = psutil.cpu_times(), time.time()
        while not self._stop.wait(self.interval_s):
            after, at = psutil.cpu_times(), time.time()
            busy, steal = busy_shares(before, after)
            self.samples.append(BusySample(since, at, busy, steal))
            before, since = after, at

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()


def samples_of(raw: list[list[float]]) -> list[BusySample]:
    """Samples back from their saved ``[since, at, busy, steal]`` form."""
    return [BusySample(*values) for values in raw]


def saturated_spans(
    samples: list[BusySample], *, threshold: float = SATURATED
) -> list[tuple[float, float]]:
    """The stretches of time (epoch seconds) in which the machine was saturated, the
    samples that touch each other merged."""
    spans: list[tuple[float, float]] = []
    for sample in samples:
        if sample.busy < threshold:
            continue
        if spans and sample.since <= spans[-1][1] + 1e-3:
            spans[-1] = (spans[-1][0], sample.at)
        else:
            spans.append((sample.since, sample.at))
    return spans


def met_saturation(job: JobHops, spans: list[tuple[float, float]]) -> bool:
    """Whether the job was in flight during any saturated stretch."""
    landed = job.published_at + job.ms[-1] / 1000
    return any(start < landed and job.published_at < end for start, end in spans)


def busy_summary(
    samples: list[BusySample], *, threshold: float = SATURATED
) -> dict[str, float | None]:
    """The share of samples with the CPUs ``threshold`` busy, the median sample's busy
    share, and the share of CPU time the hypervisor gave other guests."""
    if not samples:
        return {}
    busy = sorted(s.busy for s in samples)
    return {
        "saturated_share": round(sum(b >= threshold for b in busy) / len(busy), 3),
        "busy_median": round(busy[len(busy) // 2], 3),
        "steal_share": round(sum(s.steal for s in samples) / len(samples), 4),
    }


def headroom_split(
    jobs: list[JobHops],
    samples: list[BusySample],
    *,
    threshold: float = SATURATED,
) -> dict[str, float | None]:
    """How much of a run's tail met a saturated machine.

    - ``saturated_share``: the share of the run's samples with the CPUs ``threshold`` busy;
    - ``busy_median``: the median sample's busy share;
    - ``steal_share``: the share of CPU time the hypervisor took for other guests;
    - ``jobs_met_share``: the share of jobs in flight during a saturated stretch;
    - ``slowest_met_share``: the same for the slowest 1% of jobs (by publish → fold);
    - ``p99_all_ms`` and ``p99_with_headroom_ms``: the p99 of every job and of the jobs
      that never met one (None if none), both publish → fold line as the logs tell it, a
      little above the latency the fold records (:mod:`.hops`).
    """
    if not jobs or not samples:
        return {}
    first = min(job.published_at for job in jobs)
    last = max(job.published_at + job.ms[-1] / 1000 for job in jobs)
    during = [s for s in samples if s.at >= first and s.since <= last] or samples
    spans = saturated_spans(during, threshold=threshold)
    met = [met_saturation(job, spans) for job in jobs]
    slowest = slowest_percent(jobs)
    clear = [job.ms[-1] for job, hit in zip(jobs, met, strict=True) if not hit]
    return {
        **busy_summary(during, threshold=threshold),
        "jobs_met_share": round(sum(met) / len(jobs), 3),
        "slowest_met_share": round(sum(met[i] for i in slowest) / len(slowest), 3),
        "p99_all_ms": round(nearest_rank([job.ms[-1] for job in jobs], 99), 1),
        "p99_with_headroom_ms": round(nearest_rank(clear, 99), 1) if clear else None,
    }


def read_cluster_run(figures: dict[str, Any], logs: Path, *, per_batch: int) -> None:
    """A cluster run's own figures from its services' logs, in place: its jobs' hops, its
    logged collector pauses and its headroom split. Its ``window`` is used up; its
    ``cpu_busy`` samples stay, for anyone who wants to redraw them."""
    since, until = figures.pop("window")
    jobs = job_hops(logs, since=since, until=until, per_batch=per_batch)
    figures["hops_ms"] = summarize_hops(jobs)
    figures["gc_pauses_ms"] = gc_pauses(logs, since=since, until=until)
    figures["headroom"] = headroom_split(jobs, samples_of(figures.get("cpu_busy", [])))


def median_headroom(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Each headroom figure's median over a kind's rounds, where the rounds have it."""
    keys = {key for run in runs for key in run.get("headroom", {})}
    medians = {}
    for key in sorted(keys):
        values = [v for run in runs if (v := run.get("headroom", {}).get(key)) is not None]
        if values:
            medians[key] = round(statistics.median(values), 3)
    return medians


def percent(share: float) -> str:
    return f"{100 * share:.0f}%"


def headroom_lines(
    cluster: dict[str, Any],
    relay: dict[str, Any] | None = None,
    rounds: list[dict[str, Any]] | None = None,
) -> list[str]:
    """What a reader needs to judge a p99 against the machine it ran on: the medians, and
    with the cluster's ``rounds``, each round's share of the slowest 1% that met a
    saturated machine (a median hides the one round that met a stall)."""
    if not cluster:
        return []
    lines = [
        f"the machine's CPUs were ≥ {percent(SATURATED)} busy in "
        f"{percent(cluster['saturated_share'])} of the cluster's {SAMPLE_S * 1000:.0f}-ms "
        f"samples (the median "
        f"sample {percent(cluster['busy_median'])} busy, steal "
        f"{100 * cluster['steal_share']:.1f}%)"
        + (
            f"; in {percent(relay['saturated_share'])} of the bare relay's (the median "
            f"{percent(relay['busy_median'])})"
            if relay and "saturated_share" in relay
            else ""
        ),
    ]
    if "slowest_met_share" in cluster:
        clear = cluster.get("p99_with_headroom_ms")
        lines.append(
            f"{percent(cluster['slowest_met_share'])} of the slowest 1% of jobs were in flight "
            f"while they were (of all jobs: {percent(cluster['jobs_met_share'])}); p99, "
            f"publish → fold line in the logs: {cluster['p99_all_ms']:.1f} ms for every job, "
            + (f"{clear:.1f} ms" if clear is not None else "none")
            + " for the jobs that never met a saturated moment"
        )
    shares = [
        headroom["slowest_met_share"]
        for r in rounds or []
        if "slowest_met_share" in (headroom := r.get("headroom", {}))
    ]
    if len(shares) > 1:
        lines.append(
            "the slowest 1% that met a saturated machine, round by round: "
            + ", ".join(percent(share) for share in shares)
        )
    return lines
