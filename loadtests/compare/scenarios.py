"""The comparison's matrix: which topologies meet which workloads, and how big each run is.

A scenario is one fresh cluster (a topology) driven with one workload. The matrix holds the
four topologies the claims need (one blocking loop, one loop with threads, one loop with a
process pool of one process per core, one blocking loop per core) plus, in the full run, the
ones that teach a limit (a pool larger than the machine).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from enum import StrEnum

from shared.settings import WorkerMode


class Workload(StrEnum):
    CPU = "cpu"
    """A batch of identical CPU jobs: what parallelism gives."""
    IO = "io"
    """A batch of I/O jobs, many in flight on one loop: what concurrency gives."""
    MIXED = "mixed"
    """A steady stream of CPU jobs and I/O jobs at once: what a CPU step does to its loop."""
    OVERHEAD = "overhead"
    """I/O jobs that wait 0 ms: the pipeline's own ceiling in jobs per second."""


@dataclass(frozen=True)
class Plan:
    """How big every run is. ``quick`` trades precision for a run of under two minutes."""

    quick: bool
    cores: int
    n: int = 100_000
    """cpu jobs count primes below n: about 40 ms of pure Python on a current core, so the
    pipeline's own CPU per job (a few ms across worker, aggregator, broker) stays small."""
    io_ms: int = 2000
    io_runners: int = 500
    """Runner tasks of a worker in the io scenarios: the I/O jobs one loop keeps in flight.
    With io_ms they set the offered rate (250 jobs/s), low enough that the loop's own work
    per job (about 0.6 ms) keeps it mostly idle, as an I/O-bound service is."""
    mixed_io_ms: int = 50
    measure_s: float = 10.0
    """Target length of each measured batch; job counts follow from the calibration."""
    warm_up_s: float = 0.5
    mixed_cpu_load: float = 0.5
    """Offered CPU load of the mixed stream, as a fraction of one core."""
    mixed_io_rate: float = 100.0
    """I/O jobs per second in the mixed stream."""
    tick_s: float = 0.1
    """The mixed stream submits one small CPU batch and one small I/O batch per tick."""
    runners: int = 64
    """Runner tasks per worker (COORD_RUNNERS) everywhere else (the service's default)."""

    def runners_for(self, scenario: Scenario) -> int:
        return self.io_runners if scenario.workload == Workload.IO else self.runners

    def io_jobs(self, workers: int) -> int:
        """Whole rounds of the in-flight jobs: a last, partial round would sleep io_ms for
        a few jobs and read as lost throughput."""
        rounds = max(2, round(self.measure_s * 1000 / self.io_ms))
        return rounds * self.io_runners * workers

    @classmethod
    def for_run(cls, *, quick: bool, cores: int) -> Plan:
        if quick:
            return cls(
                quick=True, cores=cores, measure_s=3.0, warm_up_s=0.3, io_ms=1000, io_runners=250
            )
        return cls(quick=False, cores=cores)


@dataclass(frozen=True)
class Scenario:
    workload: Workload
    mode: WorkerMode
    workers: int
    pool_size: int
    """Threads or processes per worker; 0 for a blocking worker, which has no pool."""
    lesson: str
    runtime: str = "default"
    """The workers' interpreter (deploy/runtimes): ``ft`` is the free-threaded build with the
    GIL off, ``ft-gil`` the same with ``PYTHON_GIL=1``; everything else stays on this one."""
    cpus: float | None = None
    """Containers only: each worker container's CPU quota (Compose ``cpus``). A pool size
    of 0 then means what ``POOL=0`` means: one process per CPU of the quota."""

    @property
    def in_containers(self) -> bool:
        return self.cpus is not None

    @property
    def effective_pool_size(self) -> int:
        if self.pool_size or self.cpus is None:
            return self.pool_size
        return max(1, math.ceil(self.cpus))

    @property
    def name(self) -> str:
        topology = f"{self.mode.value}-{self.workers}w"
        if self.mode != WorkerMode.BLOCKING:
            topology += f"x{self.pool_size or 'quota'}"
        if self.cpus is not None:
            topology = f"containers-{topology}-cpus{self.cpus:g}"
        suffix = "" if self.runtime == "default" else f"@{self.runtime}"
        return f"{self.workload.value}/{topology}{suffix}"

    @property
    def label(self) -> str:
        """The topology in words, for tables and charts."""
        loops = "1 loop" if self.workers == 1 else f"{self.workers} loops"
        if self.cpus is not None:
            loops = (
                f"{self.workers} container{'s' if self.workers > 1 else ''} "
                f"(cpus: {self.cpus:g} each)"
            )
        if self.mode == WorkerMode.BLOCKING:
            return f"{loops}, blocking"
        unit = {
            WorkerMode.THREADS: "threads",
            WorkerMode.INTERPRETERS: "subinterpreters",
        }.get(self.mode, "processes")
        if self.effective_pool_size == 1:
            unit = {"threads": "thread", "processes": "process"}.get(unit, "subinterpreter")
        sized = "" if self.pool_size else " (sized by the quota)"
        where = {"ft": " (3.13t, GIL off)", "ft-gil": " (3.13t, GIL on)"}.get(self.runtime, "")
        return f"{loops}, {self.effective_pool_size} {unit}{sized}{where}"

    def cores_usable(self, cores: int) -> int:
        """How many cores this topology can keep busy with CPU steps.

        One loop runs one CPU step at a time; threads too, because the GIL lets one thread
        run Python at a time (unless the workers run without the GIL: the free-threaded
        runtime); a process pool, or subinterpreters with a GIL each, run ``pool_size`` at
        once. Never more than the machine has.
        """
        threads_parallel = self.runtime == "ft" if self.runtime != "default" else not gil_enabled()
        if self.mode in (WorkerMode.PROCESSES, WorkerMode.INTERPRETERS) or (
            self.mode == WorkerMode.THREADS and threads_parallel
        ):
            per_worker = self.effective_pool_size
        else:
            per_worker = 1
        if self.cpus is not None:
            per_worker = min(per_worker, max(1, math.floor(self.cpus)))
        return max(1, min(cores, self.workers * per_worker))


def gil_enabled() -> bool:
    probe = getattr(sys, "_is_gil_enabled", None)
    return True if probe is None else bool(probe())


def matrix(plan: Plan) -> list[Scenario]:
    """The scenarios of a run, in the order they run: the overhead ceiling comes first,
    because the ideal of the I/O scenario is capped by it."""
    cores = plan.cores
    replicas = max(2, cores)
    one_loop = Scenario(
        Workload.CPU, WorkerMode.BLOCKING, 1, 0, "one loop runs one CPU step at a time"
    )
    scenarios = [
        Scenario(
            Workload.OVERHEAD, WorkerMode.BLOCKING, 1, 0, "the pipeline's own ceiling (io_ms = 0)"
        ),
        Scenario(
            Workload.IO, WorkerMode.BLOCKING, 1, 0, "one loop overlaps every I/O wait it holds"
        ),
        one_loop,
    ]
    if not plan.quick:
        scenarios.append(
            Scenario(
                Workload.CPU, WorkerMode.THREADS, 1, cores, "threads share one GIL: no more cores"
            )
        )
    scenarios += [
        Scenario(Workload.CPU, WorkerMode.PROCESSES, 1, cores, "a process pool runs on every core"),
        Scenario(
            Workload.CPU,
            WorkerMode.BLOCKING,
            replicas,
            0,
            "replicas scale like a pool, one core each",
        ),
    ]
    if not plan.quick:
        scenarios.append(
            Scenario(
                Workload.CPU,
                WorkerMode.PROCESSES,
                1,
                2 * cores,
                "a pool larger than the machine adds no cores",
            )
        )
    scenarios.append(
        Scenario(
            Workload.MIXED, WorkerMode.BLOCKING, 1, 0, "a CPU step on the loop stalls its I/O jobs"
        )
    )
    if not plan.quick:
        scenarios.append(
            Scenario(
                Workload.MIXED,
                WorkerMode.THREADS,
                1,
                cores,
                "threads free the loop, but contend for the GIL",
            )
        )
    scenarios.append(
        Scenario(
            Workload.MIXED,
            WorkerMode.PROCESSES,
            1,
            cores,
            "with a process pool the loop stays responsive",
        )
    )
    return scenarios


CONTAINER_CPUS = 1.0


def container_matrix(plan: Plan, cpu_count: int) -> list[Scenario]:
    """Scenarios in worker containers with a CPU quota (only where an engine runs).

    N one-CPU containers stand next to the N local blocking loops; then the pitfall: a pool
    sized by ``os.cpu_count()`` (``cpu_count``, the machine's cores, which is what a
    container sees too) against one sized by the quota (``POOL=0``), in one 1-CPU container.
    """
    cpus = CONTAINER_CPUS
    replicas = max(2, plan.cores)
    oversized = max(2, cpu_count)
    scenarios = []
    if not plan.quick:
        scenarios.append(
            Scenario(
                Workload.CPU,
                WorkerMode.BLOCKING,
                replicas,
                0,
                "replicas in 1-CPU containers scale like local ones",
                cpus=cpus,
            )
        )
    scenarios += [
        Scenario(
            Workload.CPU,
            WorkerMode.PROCESSES,
            1,
            oversized,
            "a pool sized by os.cpu_count() overruns the quota: throttled",
            cpus=cpus,
        ),
        Scenario(
            Workload.CPU,
            WorkerMode.PROCESSES,
            1,
            0,
            "a pool sized by the quota fits it",
            cpus=cpus,
        ),
    ]
    if not plan.quick:
        scenarios += [
            Scenario(
                Workload.MIXED,
                WorkerMode.PROCESSES,
                1,
                oversized,
                "throttling stalls the loop too: every process of the container waits",
                cpus=cpus,
            ),
            Scenario(
                Workload.MIXED,
                WorkerMode.PROCESSES,
                1,
                0,
                "a pool that fits the quota leaves the loop its share",
                cpus=cpus,
            ),
        ]
    return scenarios
