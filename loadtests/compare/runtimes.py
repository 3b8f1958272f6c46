"""The runtime dimension of the comparison: the workers under another interpreter.

When ``make python-ft`` has built the free-threaded CPython, the comparison adds rows whose
workers run under it (the gateway, the aggregator and the driver stay on this interpreter):
threads with the GIL off (``ft``), the same threads with ``PYTHON_GIL=1`` (``ft-gil``), and
subinterpreters with a GIL each. Those run on ``ft-gil``, where threads alone share one
GIL, so the row shows what subinterpreters add and nothing else. Each runtime's single-core
time per job is measured side by side, and is its rows' yardstick: the free-threaded build
is slower on one thread, and its efficiency is about the cores, not that cost.
"""

from __future__ import annotations

import json
import statistics
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from coordctl.client import instances_or_none
from coordctl.local import ClusterError
from coordctl.runtimes.runtime import (
    BUILD_HINT,
    ROOT,
    RuntimeName,
    RuntimeUnavailable,
    WorkerRuntime,
    ft_available,
    gil_build,
    resolve_runtime,
    runtime_env,
)
from loadtests.compare.calibrate import Calibration
from loadtests.compare.clusters import (
    ClusterStarter,
    RunningCluster,
    fast_heartbeats,
    local_server_pids,
)
from loadtests.compare.results import (
    RaceOutcome,
    RuntimeCalibration,
    RuntimeComparison,
    ScenarioResult,
    ThreadRace,
)
from loadtests.compare.scenarios import Plan, Scenario, Workload
from loadtests.harness import scoped_cluster
from shared.heartbeat import WorkerBeat
from shared.settings import Settings, WorkerMode

RUNTIMES = (RuntimeName.DEFAULT, RuntimeName.FT, RuntimeName.FT_GIL)
INTERPRETERS_RUNTIME = RuntimeName.FT_GIL
"""Subinterpreters run where threads share one GIL, so their row isolates what they add."""
NOT_BUILT = (
    "Free-threaded and subinterpreter rows not measured: the free-threaded CPython is not "
    f"built; {BUILD_HINT}, then run `make compare` again."
)
PROBE_TIMEOUT_S = 300


def runtime_matrix(plan: Plan, runtimes: RuntimeComparison) -> list[Scenario]:
    """The runtime rows, after today's: cpu in every run, mixed in the full one."""
    if not runtimes.available:
        return []
    cores = plan.cores
    workloads = [Workload.CPU] if plan.quick else [Workload.CPU, Workload.MIXED]
    lessons = {
        (Workload.CPU, RuntimeName.FT): "without the GIL, threads run on every core",
        (Workload.CPU, RuntimeName.FT_GIL): "the same build with PYTHON_GIL=1: one core again",
        (Workload.MIXED, RuntimeName.FT): "without the GIL, threads free the loop and the cores",
        (Workload.MIXED, RuntimeName.FT_GIL): "with the GIL on, threads contend for it again",
    }
    scenarios = []
    for workload in workloads:
        for runtime in (RuntimeName.FT, RuntimeName.FT_GIL):
            scenarios.append(
                Scenario(
                    workload, WorkerMode.THREADS, 1, cores, lessons[workload, runtime], runtime
                )
            )
        scenarios.append(
            Scenario(
                workload,
                WorkerMode.INTERPRETERS,
                1,
                cores,
                "subinterpreters, a GIL each: every core in one process",
                INTERPRETERS_RUNTIME,
            )
        )
    return scenarios


def probe(runtime: WorkerRuntime, *args: object) -> dict[str, object]:
    """Run ``loadtests.compare.runtime_probe`` under ``runtime``; its one JSON line."""
    answer = subprocess.run(
        [runtime.python, "-m", "loadtests.compare.runtime_probe", *map(str, args)],
        cwd=ROOT,
        env=runtime_env(runtime),
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_S,
        check=False,
    )
    if answer.returncode != 0:
        last = (answer.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeUnavailable(f"{runtime.name} ({runtime.python}) failed: {last[:200]}")
    data: dict[str, object] = json.loads(answer.stdout)
    return data


def calibrate_runtimes(n: int, *, rounds: int, runs: int = 3) -> RuntimeComparison:
    """One core's time per job under every runtime (and the GIL build of the same source,
    where it was built), rounds alternating between them."""
    if not ft_available():
        return RuntimeComparison(available=False, note=NOT_BUILT)
    try:
        runtimes = [resolve_runtime(name) for name in RUNTIMES]
        baseline = gil_build()
        if baseline is not None:
            runtimes.append(baseline)
        samples: dict[str, list[float]] = {r.name: [] for r in runtimes}
        identity: dict[str, dict[str, object]] = {}
        for _ in range(rounds):
            for runtime in runtimes:
                answer = probe(runtime, "calibrate", n, runs)
                measured = answer["samples_ms"]
                if not isinstance(measured, list):
                    raise ValueError(f"{runtime.name} answered {answer}")
                samples[runtime.name] += [float(v) for v in measured]
                identity[runtime.name] = answer
    except (RuntimeUnavailable, OSError, subprocess.TimeoutExpired, ValueError) as exc:
        return RuntimeComparison(available=False, note=f"runtime rows not measured: {exc}")
    return RuntimeComparison(
        available=True,
        calibrations=[
            RuntimeCalibration(
                runtime=name,
                python=str(identity[name]["python"]),
                gil=bool(identity[name]["gil"]),
                cpu_job_ms=round(statistics.median(values), 3),
                samples_ms=values,
            )
            for name, values in samples.items()
        ],
    )


def race_runtimes(runtimes: RuntimeComparison, *, threads: int, rounds: int) -> RuntimeComparison:
    """The threads race under every runtime: lost updates where threads really overlap."""
    if not runtimes.available:
        return runtimes
    races = []
    try:
        for name in RUNTIMES:
            runtime = resolve_runtime(name)
            answer = probe(runtime, "race", threads, rounds)
            races.append(
                ThreadRace(
                    runtime=name,
                    python=str(answer["python"]),
                    gil=bool(answer["gil"]),
                    threads=threads,
                    rounds=rounds,
                    unsafe=RaceOutcome.model_validate(answer["unsafe"]),
                    safe=RaceOutcome.model_validate(answer["safe"]),
                )
            )
    except (RuntimeUnavailable, OSError, subprocess.TimeoutExpired, ValueError) as exc:
        note = f"threads race not run: {exc}"
        return runtimes.model_copy(update={"thread_races": races, "note": note})
    return runtimes.model_copy(update={"thread_races": races})


def calibration_for(
    scenario: Scenario,
    calibration: Calibration,
    runtimes: RuntimeComparison | None,
    image_step_ms: list[float] | None = None,
) -> Calibration:
    """The yardstick of a scenario: its workers' own single-core time per job, that of
    their runtime, or of their container image where the step was timed in it."""
    if image_step_ms:
        return with_step(calibration, image_step_ms)
    own = None if runtimes is None else runtimes.calibration(scenario.runtime)
    if scenario.runtime == RuntimeName.DEFAULT or own is None:
        return calibration
    return with_step(calibration, own.samples_ms)


def with_step(calibration: Calibration, samples_ms: list[float]) -> Calibration:
    return calibration.model_copy(
        update={
            "cpu_job_ms": round(statistics.median(samples_ms), 3),
            "cpu_job_fastest_ms": min(samples_ms),
            "samples_ms": samples_ms,
        }
    )


def workers_identity(gateway_url: str) -> tuple[str | None, bool | None]:
    """The Python version and GIL state the workers' heartbeats report (None: unknown)."""
    answer = instances_or_none(gateway_url, timeout_s=5)
    if answer is None:
        return None, None
    workers = [b for b in answer.instances if isinstance(b, WorkerBeat)]
    if not workers:
        return None, None
    pythons = {b.python for b in workers}
    gils = {b.gil for b in workers}
    return ", ".join(sorted(pythons)), gils.pop() if len(gils) == 1 else None


def with_identity(result: ScenarioResult, scenario: Scenario, gateway_url: str) -> ScenarioResult:
    python, gil = workers_identity(gateway_url)
    return result.model_copy(
        update={"runtime": scenario.runtime, "worker_python": python, "worker_gil": gil}
    )


def runtime_starter(base: ClusterStarter) -> ClusterStarter:
    """``base`` for today's rows; local processes with the workers under their runtime for
    the others (the runtime is built on this machine, not in an image)."""

    @contextmanager
    def start(settings: Settings, scenario: Scenario) -> Iterator[RunningCluster]:
        if scenario.runtime == RuntimeName.DEFAULT:
            with base(settings, scenario) as cluster:
                yield cluster
            return
        try:
            runtime = resolve_runtime(scenario.runtime)
        except RuntimeUnavailable as exc:
            raise ClusterError(str(exc)) from None
        with scoped_cluster(
            settings,
            workers=scenario.workers,
            mode=scenario.mode,
            pool_size=scenario.pool_size,
            worker_python=runtime.python,
            worker_env=fast_heartbeats(runtime.env),
        ) as state:
            cluster = RunningCluster(
                state.gateway_url,
                {m.name: m.pid for m in state.members},
                local_server_pids(settings),
            )
            expected_gil = scenario.runtime == RuntimeName.FT_GIL
            python, gil = workers_identity(cluster.gateway_url)
            if gil is not expected_gil:
                raise ClusterError(
                    f"workers under {scenario.runtime} run {python} with the GIL "
                    f"{'on' if gil else 'off' if gil is not None else 'unknown'}, expected "
                    f"{'on' if expected_gil else 'off'}"
                )
            yield cluster

    return start
