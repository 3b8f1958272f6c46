"""What a comparison run records: the schema of ``results.json``.

Charts and ``report.md`` are drawn from these models alone, so a results file from another
machine can be re-rendered, and two runs can be compared field by field.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, Field

from loadtests.compare.calibrate import Calibration
from loadtests.compare.cpustat import Throttling
from shared.api import LatencySummary
from shared.histogram import LATENCY_BUCKETS
from shared.looplag import LagSummary


class ScenarioResult(BaseModel):
    name: str
    label: str
    lesson: str
    mode: str
    workers: int
    pool_size: int
    runners: int
    workload: str
    n: int
    io_ms: int
    jobs: int
    failed: int
    duration_s: float
    throughput_jobs_s: float
    ideal_jobs_s: float | None
    efficiency: float | None
    cores_usable: int
    latency_ms: LatencySummary
    io_latency_ms: LatencySummary | None = None
    """Mixed only: the I/O jobs on their own, where a stalled loop shows."""
    cpu_latency_ms: LatencySummary | None = None
    offered_jobs_s: float | None = None
    """Mixed only: the rate the stream submitted at."""
    loop_lag_ms: LagSummary
    loop_lag_per_worker: dict[str, LagSummary]
    cpu_percent: dict[str, float] = Field(
        description="CPU time per process over the window, in % of one core (pool children "
        "summed under '<worker> pool'); empty where the processes are not visible."
    )
    workers_cores: float | None = Field(
        default=None,
        description="Cores' worth of CPU the workers and their pools got over the window "
        "(1.0 = one core busy all the time); below cores_usable when other programs took "
        "the cores or the topology left them idle.",
    )
    attempts: int = 1
    """A CPU scenario whose workers got under 80% of their cores is run once more."""
    pipeline_cpu_ms_per_job: float | None = Field(
        default=None,
        description="CPU every process (services, pool, local RabbitMQ and Redis) spent per "
        "job beyond the calibrated CPU step: the pipeline's own work, plus what the step costs "
        "more inside the cluster than alone. It shares the cores with the steps.",
    )
    cpu_ms_per_job: float | None = Field(
        default=None,
        description="CPU every process (services, pool, local RabbitMQ and Redis) spent per "
        "job, in all: pipeline_cpu_ms_per_job is this minus the calibrated step, taken again "
        "against the final calibration on cpu.",
    )
    pool_step_cpu_ms_per_job: float | None = Field(
        default=None,
        description="A process pool on cpu only: the CPU of the pool's children per job. Next "
        "to the calibration's cpu_job_ms it splits pipeline_cpu_ms_per_job into what the step "
        "costs more in a child, beside another busy child and the pipeline, than alone (this "
        "minus cpu_job_ms), and the work outside the step (the rest).",
    )
    image_step_ms: list[float] = Field(
        default_factory=list,
        description="Workers in containers only: one core's CPU ms per cpu job, timed in a "
        "worker container of the scenario before it ran. The image's interpreter is not this "
        "one (the official images' CPython is built with PGO and LTO), so this row's ideal, "
        "efficiency and pipeline CPU are measured against the median of these instead of "
        "the calibration's.",
    )
    prefork_jobs_s: float | None = Field(
        default=None,
        description="A local process pool on cpu only: jobs/s of a bare prefork pool of the "
        "same size (multiprocessing.Pool, one job per task), run right after the scenario, "
        "its cluster stopped. The machine's speed drifts by tens of percent over a run here, "
        "so the pool is held against this, measured under the same conditions, rather than "
        "against the calibration's prefork minutes earlier.",
    )
    prefork_step_cpu_ms_per_job: float | None = Field(
        default=None,
        description="The step's mean CPU per job in that prefork pool's children: against "
        "pool_step_cpu_ms_per_job, what running in the cluster's pool costs the step itself.",
    )
    latency_cdf_ms: list[float] = Field(
        description="Latency at every percentile 0..100, for the distribution chart."
    )
    io_latency_cdf_ms: list[float] | None = None
    container_cpus: float | None = None
    """Containers only: each worker container's CPU quota (Compose ``cpus``)."""
    throttling: Throttling | None = Field(
        default=None,
        description="Containers only: the worker containers' cpu.stat over the window "
        "(periods, periods throttled, seconds throttled), summed.",
    )
    error: str | None = None
    runtime: str = "default"
    """The workers' runtime: 'default', 'ft' (free-threaded, GIL off) or 'ft-gil'."""
    worker_python: str | None = None
    """What the workers' heartbeats said they run: the version ('t': free-threaded)..."""
    worker_gil: bool | None = None
    """...and whether the GIL was on in them."""


class RaceOutcome(BaseModel):
    expected: int
    observed: int
    lost: int

    @classmethod
    def of(cls, expected: int, observed: int) -> RaceOutcome:
        return cls(expected=expected, observed=observed, lost=expected - observed)


class CrossProcessRace(BaseModel):
    processes: int
    tasks_per_process: int
    unsafe: RaceOutcome
    """GET then SET from every task of every process."""
    safe: RaceOutcome
    """Atomic INCR."""
    local_lock: RaceOutcome
    """GET then SET under an asyncio.Lock in each process: the lock stops at the process."""


class RaceResults(BaseModel):
    tasks: int
    rounds: int
    unsafe: RaceOutcome
    """Read, await, write a shared counter from many tasks of one loop, without a lock."""
    safe: RaceOutcome
    """The same under an asyncio.Lock."""
    cross_process: CrossProcessRace | None
    cross_process_error: str | None = None


class RuntimeCalibration(BaseModel):
    """One core's time for one ``cpu`` job under one runtime, timed in a process of its own;
    every runtime's rounds alternate, so a burst of other work on the machine is shared."""

    runtime: str
    python: str
    gil: bool
    cpu_job_ms: float
    samples_ms: list[float]


class ThreadRace(BaseModel):
    """Threads adding to one counter by a read and a write, without and with a Lock."""

    runtime: str
    python: str
    gil: bool
    threads: int
    rounds: int
    unsafe: RaceOutcome
    safe: RaceOutcome


class RuntimeComparison(BaseModel):
    """The runtime dimension: other interpreters for the workers (deploy/runtimes)."""

    available: bool
    note: str = ""
    """Without the free-threaded build: how to get it. With it: what could not be measured."""
    calibrations: list[RuntimeCalibration] = Field(default_factory=list)
    thread_races: list[ThreadRace] = Field(default_factory=list)

    def calibration(self, runtime: str) -> RuntimeCalibration | None:
        return next((c for c in self.calibrations if c.runtime == runtime), None)


class Machine(BaseModel):
    cores: int
    cpu_model: str
    python: str
    implementation: str
    gil: bool
    platform: str
    load_average: list[float] | None
    """1, 5 and 15 minute load averages before the run; above ~0.5 per core means the
    figures share the cores with other programs."""
    load_average_after: list[float] | None = None
    cluster: str
    """How the clusters were started: 'local processes' or 'compose'."""
    container_engine: str | None = None
    """What ran the container scenarios ('docker', 'podman'); None: no engine, not run."""
    cpu_count: int | None = None
    """os.cpu_count(): what a pool sized naively would use, inside a container too."""


class Target(BaseModel):
    """A figure with its strict threshold for a quiet 2-core machine (``verdicts.targets``)."""

    name: str
    figure: float | None
    threshold: str
    passed: bool | None
    note: str | None = None
    """Why a measured figure was not judged (``passed`` is then None)."""


class Claim(BaseModel):
    number: int
    text: str
    verdict: str
    """'supported', 'not supported' or 'not measured'."""
    evidence: str


class CompareResults(BaseModel):
    started_at: str
    duration_s: float
    quick: bool
    machine: Machine
    calibration: Calibration
    settings: dict[str, float | int | str]
    scenarios: list[ScenarioResult]
    race: RaceResults | None
    targets: list[Target] = Field(default_factory=list)
    claims: list[Claim] = Field(default_factory=list)
    runtimes: RuntimeComparison | None = None

    def scenario(self, name: str) -> ScenarioResult | None:
        for result in self.scenarios:
            if result.name == name and result.error is None:
                return result
        return None


def figure_text(value: float | None) -> str:
    """A figure as a table shows it: three significant digits, thousands separated."""
    if value is None:
        return "n/a"
    if isinstance(value, int) or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def cdf_points(histogram: Mapping[int, int]) -> list[float]:
    """The latency at each percentile 0..100 (nearest rank) of a latency histogram, in ms
    rounded to 0.1 (each within the buckets' relative error)."""
    return LATENCY_BUCKETS.cdf(histogram)
