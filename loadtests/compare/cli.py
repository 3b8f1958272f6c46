"""``cluster compare``: calibrate, run every scenario on a fresh cluster, race, report.

The terminal shows a progress bar and the table growing row by row; the report lands in
``<out>/<timestamp>/`` and ``<out>/latest`` points at it.
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from coordctl.compose import ComposeError
from coordctl.engine import available_container_engine, engine_for
from coordctl.local import ClusterError
from coordctl.servers import ServerUnavailable, free_port
from loadtests.compare.calibrate import (
    Calibration,
    bare_parallel_speedup,
    calibrate,
    ideal_jobs_s,
    prefork,
    refine,
    usable_cores,
)
from loadtests.compare.clusters import (
    WORKER_HEARTBEAT_S,
    ClusterStarter,
    choose_starter,
    container_starter,
)
from loadtests.compare.drive import ScenarioFailed, drive
from loadtests.compare.race import run_race
from loadtests.compare.report import TERMINAL_COLUMNS, render, terminal_row
from loadtests.compare.results import CompareResults, Machine, RuntimeComparison, ScenarioResult
from loadtests.compare.runtime_verdicts import runtime_claims, runtime_targets
from loadtests.compare.runtimes import (
    calibrate_runtimes,
    calibration_for,
    race_runtimes,
    runtime_matrix,
    runtime_starter,
    with_identity,
)
from loadtests.compare.scenarios import (
    Plan,
    Scenario,
    Workload,
    container_matrix,
    gil_enabled,
    matrix,
)
from loadtests.compare.verdicts import claims, targets
from loadtests.harness import cpu_model
from loadtests.reports import point_latest
from shared.api import LatencySummary
from shared.looplag import LagSummary
from shared.settings import Settings, WorkerMode

BUSY_LOAD_PER_CORE = 0.5
STARVED_SHARE = 0.8
LOG_LEVEL = "warning"
"""A log line per job is not what is compared; it would only add the same cost everywhere."""


class NothingToCompare(Exception):
    """``--only`` matched no scenario of this run (the message says what names look like)."""


def load_average() -> list[float] | None:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def machine(cores: int, cluster: str) -> Machine:
    return Machine(
        cores=cores,
        cpu_model=cpu_model(),
        python=platform.python_version(),
        implementation=platform.python_implementation(),
        gil=gil_enabled(),
        platform=platform.platform(terse=True),
        load_average=load_average(),
        cluster=cluster,
    )


def starved(result: ScenarioResult) -> bool:
    """A CPU scenario whose workers got under 80% of the cores they could use: other
    programs took them, so the run says little about the topology."""
    if result.error is not None or result.workload != Workload.CPU:
        return False
    if result.workers_cores is None:
        return False
    return result.workers_cores < STARVED_SHARE * result.cores_usable


def with_ideal(
    result: ScenarioResult, scenario: Scenario, plan: Plan, calibration: Calibration
) -> ScenarioResult:
    """A CPU scenario's ideal, efficiency and pipeline CPU against the final calibration,
    whose samples span the whole run, so one noisy moment at the start does not set the
    yardstick (nor make the pipeline's CPU look like nothing beside an early, slow step)."""
    if result.error is not None or scenario.workload != Workload.CPU:
        return result
    ideal = ideal_jobs_s(scenario, plan, calibration)
    if not ideal:
        return result
    update: dict[str, float] = {
        "ideal_jobs_s": round(ideal, 2),
        "efficiency": round(result.throughput_jobs_s / ideal, 3),
    }
    if result.cpu_ms_per_job is not None:
        update["pipeline_cpu_ms_per_job"] = round(
            max(0.0, result.cpu_ms_per_job - calibration.cpu_job_ms), 3
        )
    return result.model_copy(update=update)


def with_prefork_beside(result: ScenarioResult, scenario: Scenario, plan: Plan) -> ScenarioResult:
    """A process pool's result with a bare prefork pool run right after it, on as many
    cores. The per-job CPU of one step drifts by tens of percent over a run on a shared VM,
    so a baseline taken minutes earlier says as much about the machine as about the pool."""
    if (
        result.error is not None
        or scenario.workload != Workload.CPU
        or scenario.mode != WorkerMode.PROCESSES
        or scenario.in_containers
        or scenario.runtime != "default"
    ):
        return result
    baseline = prefork(
        plan.n,
        scenario.cores_usable(plan.cores),
        seconds=1.0 if plan.quick else 2.0,
        rounds=3,
    )
    return result.model_copy(
        update={
            "prefork_jobs_s": baseline.jobs_s,
            "prefork_step_cpu_ms_per_job": baseline.step_ms,
        }
    )


def failed_result(scenario: Scenario, error: str) -> ScenarioResult:
    empty = LatencySummary(p50=None, p95=None, p99=None, max=None)
    return ScenarioResult(
        name=scenario.name,
        label=scenario.label,
        lesson=scenario.lesson,
        mode=scenario.mode.value,
        workers=scenario.workers,
        pool_size=scenario.pool_size,
        runners=0,
        workload=scenario.workload.value,
        n=0,
        io_ms=0,
        jobs=0,
        failed=0,
        duration_s=0,
        throughput_jobs_s=0,
        ideal_jobs_s=None,
        efficiency=None,
        cores_usable=0,
        latency_ms=empty,
        loop_lag_ms=LagSummary(p50=None, p99=None, max=None, samples=0),
        loop_lag_per_worker={},
        cpu_percent={},
        latency_cdf_ms=[],
        error=error,
    )


def scenario_settings(
    base: Settings, plan: Plan, scenario: Scenario, namespace: str, run_dir: Path, *, own_port: bool
) -> Settings:
    """A scenario's cluster settings: its own namespace and run directory, and its own
    gateway port unless Compose publishes a fixed one."""
    return base.replace(
        namespace=namespace,
        gateway_port=free_port() if own_port else base.gateway_port,
        run_dir=run_dir,
        runners=plan.runners_for(scenario),
        log_level=LOG_LEVEL,
    )


def new_table() -> Table:
    table = Table(title="scenarios", title_justify="left")
    for column in TERMINAL_COLUMNS:
        table.add_column(column, justify="left" if column == "scenario" else "right")
    return table


class Comparison:
    """One run: its plan, calibration, cluster starter, display and results so far."""

    def __init__(
        self,
        base: Settings,
        plan: Plan,
        starter: ClusterStarter,
        console: Console,
        *,
        own_ports: bool,
        only: str | None = None,
        container_starter: ClusterStarter | None = None,
    ) -> None:
        self.base = base
        self.plan = plan
        self.starter = starter
        self.container_starter = container_starter
        self.own_ports = own_ports
        self.only = only
        self.console = console
        self.run_id = uuid.uuid4().hex[:6]
        self.runtimes: RuntimeComparison | None = None
        self.results: list[ScenarioResult] = []
        self.table = new_table()
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
        )

    def run_scenario(
        self, scenario: Scenario, index: int, calibration: Calibration, work: Path, logs: Path
    ) -> ScenarioResult:
        run_dir = work / f"{index:02d}"
        settings = scenario_settings(
            self.base,
            self.plan,
            scenario,
            f"{self.base.namespace}-{self.run_id}-{index:02d}",
            run_dir,
            own_port=self.own_ports or scenario.in_containers,
        )
        starter = self.starter
        if scenario.in_containers and self.container_starter is not None:
            starter = self.container_starter
        task = self.progress.tasks[0].id

        def step(text: str) -> None:
            self.progress.update(task, description=f"{scenario.name}: {text}")

        step("starting the cluster")
        try:
            with starter(settings, scenario) as cluster:
                image_step_ms = []
                if cluster.time_step is not None:
                    step("timing the step in a worker container")
                    image_step_ms = cluster.time_step(self.plan.n)
                yardstick = calibration_for(scenario, calibration, self.runtimes, image_step_ms)
                result = asyncio.run(drive(scenario, self.plan, yardstick, cluster, step))
                result = with_identity(result, scenario, cluster.gateway_url)
                result = result.model_copy(update={"image_step_ms": image_step_ms})
        except (ScenarioFailed, ClusterError, ServerUnavailable, ComposeError, OSError) as exc:
            kept = logs / scenario.name.replace("/", "_")
            if (run_dir / "logs").is_dir():
                shutil.copytree(run_dir / "logs", kept, dirs_exist_ok=True)
            return failed_result(scenario, f"{exc} (logs: {kept})")
        return result

    def run(self, folder: Path, machine: Machine) -> CompareResults:
        started = time.monotonic()
        started_at = datetime.now().astimezone().isoformat(timespec="seconds")
        calibration = calibrate(self.plan.n)
        calibration.bare_parallel_speedup = bare_parallel_speedup(
            self.plan.n, self.plan.cores, rounds=2 if self.plan.quick else 4
        )
        baseline = prefork(
            self.plan.n, self.plan.cores, seconds=1.0 if self.plan.quick else 2.0, rounds=3
        )
        calibration.prefork_jobs_s = baseline.jobs_s
        calibration.prefork_step_ms = baseline.step_ms
        self.runtimes = calibrate_runtimes(self.plan.n, rounds=2 if self.plan.quick else 3)
        every = matrix(self.plan) + runtime_matrix(self.plan, self.runtimes)
        if self.container_starter is not None:
            every += container_matrix(self.plan, os.cpu_count() or 1)
        scenarios = [s for s in every if self.only is None or self.only in s.name]
        if not scenarios:
            raise NothingToCompare(
                f"no scenario matches --only {self.only!r}; names look like "
                f"{', '.join(s.name for s in every[:3])}, …"
            )
        overall = self.progress.add_task("calibrated", total=len(scenarios) + 1)
        with (
            Live(
                Group(self.progress, self.table), console=self.console, refresh_per_second=4
            ) as live,
            tempfile.TemporaryDirectory(prefix="coord-compare-") as work,
        ):
            for index, scenario in enumerate(scenarios):
                result = self.run_scenario(
                    scenario, index, calibration, Path(work), folder / "logs"
                )
                if starved(result):
                    again = self.run_scenario(
                        scenario, index, calibration, Path(work), folder / "logs"
                    )
                    if again.error is None and (again.workers_cores or 0) > (
                        result.workers_cores or 0
                    ):
                        result = again
                    result = result.model_copy(update={"attempts": 2})
                result = with_prefork_beside(result, scenario, self.plan)
                if scenario.workload == Workload.OVERHEAD and result.error is None:
                    calibration.overhead_jobs_s = result.throughput_jobs_s
                calibration = refine(calibration)
                self.results.append(result)
                self.table.add_row(*terminal_row(result))
                self.progress.advance(overall)
            self.results = [
                with_ideal(
                    result,
                    scenario,
                    self.plan,
                    calibration_for(scenario, calibration, self.runtimes, result.image_step_ms),
                )
                for result, scenario in zip(self.results, scenarios, strict=True)
            ]
            self.table = new_table()
            for result in self.results:
                self.table.add_row(*terminal_row(result))
            live.update(Group(self.progress, self.table))
            self.progress.update(overall, description="race demonstration")
            race = run_race(
                self.base.redis_url.get_secret_value(),
                self.base.replace(namespace=f"{self.base.namespace}-{self.run_id}-race").names,
                cores=self.plan.cores,
                quick=self.plan.quick,
            )
            self.runtimes = race_runtimes(
                self.runtimes,
                threads=max(2, self.plan.cores),
                rounds=1_000_000,
            )
            self.progress.advance(overall)
            self.progress.update(overall, description="done")
        results = CompareResults(
            started_at=started_at,
            duration_s=round(time.monotonic() - started, 1),
            quick=self.plan.quick,
            machine=machine,
            calibration=calibration,
            settings={
                "n": self.plan.n,
                "io_ms": self.plan.io_ms,
                "mixed_io_ms": self.plan.mixed_io_ms,
                "mixed_cpu_load": self.plan.mixed_cpu_load,
                "mixed_io_rate": self.plan.mixed_io_rate,
                "measure_s": self.plan.measure_s,
                "runners": self.plan.runners,
                "io_runners": self.plan.io_runners,
                "heartbeat_s": WORKER_HEARTBEAT_S,
                "log_level": LOG_LEVEL,
            },
            scenarios=self.results,
            race=race,
            runtimes=self.runtimes,
        )
        return results


def run_compare(
    *,
    quick: bool,
    out: Path,
    base: Settings,
    console: Console,
    local: bool = False,
    only: str | None = None,
) -> tuple[Path, CompareResults]:
    """Run the whole comparison and write its report; returns the report's folder."""
    cores = usable_cores()
    plan = Plan.for_run(quick=quick, cores=cores)
    cluster_kind, starter = choose_starter(local=local)
    folder = out / datetime.now().strftime("%Y%m%d-%H%M%S")
    while folder.exists():
        folder = folder.with_name(folder.name + "a")
    console.print(
        f"comparing on {cores} cores, clusters as {cluster_kind}; "
        f"{'quick run (about 1-2 min)' if quick else 'full run (about 3-5 min)'}"
    )
    busy = load_average()
    if busy is not None and busy[0] > BUSY_LOAD_PER_CORE * cores:
        console.print(
            f"[yellow]the machine is busy (load average {busy[0]:.1f} on {cores} cores): "
            "other programs share the cores, so figures will come out low[/]"
        )
    engine = None if local else available_container_engine()
    if engine is None:
        console.print(
            "containers rows: no container engine answers; `make up ENGINE=podman` once "
            "(or start Docker) to add them"
        )
    with engine_for(engine) as engine_env:
        comparison = Comparison(
            base,
            plan,
            runtime_starter(starter),
            console,
            own_ports=cluster_kind != "compose",
            only=only,
            container_starter=None if engine_env is None else container_starter(engine_env),
        )
        results = comparison.run(
            folder,
            machine(cores, cluster_kind).model_copy(
                update={
                    "container_engine": None if engine is None else engine.value,
                    "cpu_count": os.cpu_count(),
                }
            ),
        )
    results.machine.load_average_after = load_average()
    results.targets = targets(results) + runtime_targets(results)
    results.claims = claims(results) + runtime_claims(results)
    missing = render(results, folder)
    point_latest(folder)
    if missing:
        console.print("charts left out: matplotlib is not installed (pip install '.[report]')")
    return folder, results


def print_verdicts(results: CompareResults, console: Console) -> None:
    if results.runtimes is not None and results.runtimes.note:
        console.print(results.runtimes.note)
    for claim in results.claims:
        colour = {"supported": "green", "not supported": "red"}.get(claim.verdict, "yellow")
        console.print(f"claim {claim.number}: [{colour}]{claim.verdict}[/] — {claim.evidence}")
    failed = [t for t in results.targets if t.passed is False]
    if failed:
        console.print(
            "targets missed: " + "; ".join(f"{t.name} = {t.figure} ({t.threshold})" for t in failed)
        )
    for target in results.targets:
        if target.note:
            console.print(f"{target.name} = {target.figure}: {target.note}")
