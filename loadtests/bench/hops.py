"""Where a job's latency goes, hop by hop, read from the services' own log lines.

Every job leaves three timestamped lines in a local cluster's logs (one clock, one machine):
the gateway's ``batch_accepted`` (with ``publish_ms``, so when its batch began publishing),
the worker's ``job_completed`` (with ``duration_ms`` and each step's ``<step>_ms``, so when the
worker took it up and when its result went out) and the aggregator's ``result_folded``. From
them each job's time splits into

- ``gateway → worker``: publishing, the broker's first hop and the wait in the worker's inbox;
- ``steps``: the job's own steps (for an ``io`` job, its Redis touch);
- ``result → folded``: the result's publish, the broker's second hop, the wait for a fold
  slice, the fold and the aggregator's ack;
- ``confirm + ack`` (off the path): the worker's wait for its result's confirm and its ack
  of the job, which the result does not wait for on its way to the aggregator.

The lines are written after the step they close, so ``total`` (publish to the fold's line)
is a little above the latency the fold records, and the hops are for comparing with each
other, not for adding up to it exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

HOPS = ("gateway → worker", "steps", "result → folded", "confirm + ack", "total")


@dataclass(frozen=True)
class JobHops:
    published_at: float
    ms: tuple[float, float, float, float, float]


def events(path: Path, wanted: frozenset[str]) -> Iterator[dict[str, object]]:
    with path.open("rb") as lines:
        for line in lines:
            if line.startswith(b"{"):
                event = orjson.loads(line)
                if event.get("event") in wanted:
                    yield event


def stamp(event: dict[str, object]) -> float:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


def job_hops(logs: Path, *, since: float, until: float, per_batch: int) -> list[JobHops]:
    """Each job of a batch of ``per_batch`` whose publishing began between ``since`` and
    ``until`` (epoch seconds)."""
    published: dict[str, float] = {}
    for event in events(logs / "gateway.log", frozenset({"batch_accepted"})):
        began = stamp(event) - float(str(event["publish_ms"])) / 1000
        if event["count"] == per_batch and since <= began <= until:
            published[str(event["batch_id"])] = began
    worked: dict[str, tuple[float, float, float]] = {}
    for path in sorted(logs.glob("worker*.log")):
        for event in events(path, frozenset({"job_completed"})):
            if event.get("batch_id") in published:
                steps_ms = sum(
                    float(str(value))
                    for key, value in event.items()
                    if key.endswith("_ms") and key != "duration_ms"
                )
                duration_ms = float(str(event["duration_ms"]))
                worked[str(event["job_id"])] = (stamp(event), duration_ms, steps_ms)
    jobs = []
    for event in events(logs / "aggregator.log", frozenset({"result_folded"})):
        job_id, batch_id = str(event.get("job_id")), str(event.get("batch_id"))
        if batch_id not in published or job_id not in worked:
            continue
        began, (done, duration_ms, steps_ms) = published[batch_id], worked[job_id]
        taken_up = done - duration_ms / 1000
        folded = stamp(event)
        ms = (
            (taken_up - began) * 1000,
            steps_ms,
            (folded - taken_up) * 1000 - steps_ms,
            duration_ms - steps_ms,
            (folded - began) * 1000,
        )
        jobs.append(JobHops(began, ms))
    return jobs


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def slowest_percent(jobs: list[JobHops]) -> list[int]:
    """Indices of the slowest 1% of ``jobs`` by total (at least one)."""
    by_total = sorted(range(len(jobs)), key=lambda i: jobs[i].ms[-1])
    return by_total[-max(1, len(jobs) // 100) :]


def summarize(jobs: list[JobHops]) -> dict[str, dict[str, float]]:
    """p50 and p99 of each hop, and each hop's mean over the slowest 1% of jobs (by total)."""
    if not jobs:
        return {}
    slowest = [jobs[i] for i in slowest_percent(jobs)]
    return {
        hop: {
            "p50": round(nearest_rank([job.ms[i] for job in jobs], 50), 1),
            "p99": round(nearest_rank([job.ms[i] for job in jobs], 99), 1),
            "slowest_1pct_mean": round(sum(job.ms[i] for job in slowest) / len(slowest), 1),
        }
        for i, hop in enumerate(HOPS)
    }


def gc_pauses(logs: Path, *, since: float, until: float) -> dict[str, list[float]]:
    """Each service's logged garbage-collector pauses (``gc_pause``, CPU ms) in the window."""
    pauses: dict[str, list[float]] = {}
    for path in sorted(logs.glob("*.log")):
        for event in events(path, frozenset({"gc_pause"})):
            if since <= float(str(event["at"])) <= until:
                pauses.setdefault(path.stem, []).append(float(str(event["cpu_ms"])))
    return pauses
