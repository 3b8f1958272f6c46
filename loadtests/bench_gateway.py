"""``python -m loadtests.bench_gateway``: the gateway's sustained submit rate and p99, as a ratio.

Starts a real cluster (its own namespace, port and run directory) and the baselines from
``loadtests/bare_app.py`` on uvicorn with the gateway's settings, then drives each with the
same closed-loop Locust run (``loadtests/bench_locustfile.py``) at a few user counts,
alternating targets (their order swapped every round) so a busy neighbour on a shared
machine hurts all of them alike. ``publish`` publishes into the cluster's own namespace by
default, so its jobs are consumed and folded by the same worker and aggregator as the
gateway's: both targets then carry the same cluster behind them, and the ratio is the
gateway's own overhead. Every run starts once the cluster's queues are drained.
Writes ``<reports>/<timestamp>/results.json`` (every run, the medians, the overhead ratios
and the targets with their thresholds, with every Locust log and the cluster's logs beside
it) and points ``<reports>/latest`` at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import psutil
import typer
from aio_pika.exceptions import AMQPError
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from coordctl.local import ClusterError, ClusterState
from coordctl.namespace import purge_namespace
from coordctl.servers import ServerUnavailable, free_port, host_port, wait_listening
from loadtests.bench.charts import GATEWAY_CHARTS, gateway_charts
from loadtests.charts import charts_lines
from loadtests.cpu_limit import CpuLimitUnavailable, cpu_limited
from loadtests.harness import machine, scoped_cluster
from loadtests.reports import new_run_dir, point_latest
from shared.messaging import connect_amqp, queue_depths
from shared.settings import Settings, WorkerMode, load_settings

BENCH_LOCUSTFILE = Path(__file__).resolve().parent / "bench_locustfile.py"
BASELINES = {
    "bare": "loadtests.bare_app:bare",
    "fastapi": "loadtests.bare_app:validated",
    "publish": "loadtests.bare_app:publish",
}
PUBLISH_SHARE_TARGET = 0.7
"""The gateway's rate over ``publish``'s (same I/O per request) at ``TARGET_USERS``."""
TARGET_USERS = 100
TARGETS = ("gateway", *BASELINES)
CPU_WARNING = "CPU usage above"
DRAIN_TIMEOUT_S = 120.0
PUBLISH_INTO = ("cluster", "own")
"""Where ``publish`` sends its jobs: the cluster's namespace (consumed and folded like the
gateway's) or a namespace of its own that nothing consumes."""


@dataclass(frozen=True)
class Target:
    """Where to send requests, and whose CPU time to count: the server, the rest."""

    url: str
    server: list[int]
    rest: list[int] = field(default_factory=list)


console = Console(width=None if sys.stdout.isatty() else 140)
errors = Console(stderr=True, soft_wrap=True)


def fail(message: str) -> NoReturn:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(1)


@contextmanager
def baseline_server(
    app: str, port: int, logs: Path, settings: Settings | None = None, *, purge: bool = True
) -> Iterator[Target]:
    """One uvicorn process serving ``app`` with the gateway's uvicorn settings; with
    ``settings``, in their namespace, which is purged afterwards unless ``purge`` is off
    (the cluster's own, purged with the cluster)."""
    command = [
        sys.executable, "-m", "uvicorn", app,
        "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    with (logs / f"{app.rsplit(':', 1)[1]}.log").open("ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=os.environ | {"COORD_NAMESPACE": settings.namespace} if settings else None,
        )
    try:
        wait_listening("127.0.0.1", port, timeout_s=30, what=app)
        yield Target(f"http://127.0.0.1:{port}", server=[process.pid])
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if settings is not None and purge:
            with contextlib.suppress(Exception):
                asyncio.run(purge_namespace(settings))


@contextmanager
def gateway_cluster(settings: Settings, workers: int) -> Iterator[Target]:
    """A real cluster in its own namespace; stopped by pid and purged afterwards."""
    try:
        with scoped_cluster(settings, workers=workers, mode=WorkerMode.PROCESSES) as state:
            yield Target(
                state.gateway_url,
                server=[m.pid for m in state.members if m.service == "gateway"],
                rest=[m.pid for m in state.members if m.service != "gateway"],
            )
    except (ClusterError, ServerUnavailable) as exc:
        fail(str(exc))


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of these processes and their children (a worker's pool)."""
    total = 0.0
    for pid in pids:
        try:
            process = psutil.Process(pid)
            for member in [process, *process.children(recursive=True)]:
                times = member.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            continue
    return total


async def backlog(settings: Settings) -> int:
    """Messages waiting in the cluster's jobs and results queues."""
    connection = await connect_amqp(settings, attempts=3)
    async with connection:
        depths = await queue_depths(connection, settings.names)
    return sum(max(0, depths[q]) for q in (settings.names.jobs_queue, settings.names.results_queue))


def wait_drained(settings: Settings, timeout_s: float = DRAIN_TIMEOUT_S) -> int:
    """Wait until the previous run's jobs are consumed, so no run pays for another's
    backlog; returns what was still waiting when it gave up (0 when drained)."""
    deadline = time.monotonic() + timeout_s
    waiting = -1
    while time.monotonic() < deadline:
        try:
            waiting = asyncio.run(backlog(settings))
        except (AMQPError, ConnectionError, OSError):
            waiting = -1
        if waiting == 0:
            return 0
        time.sleep(0.5)
    return waiting


def measure(target: Target, users: int, duration_s: int, out: Path) -> dict[str, Any]:
    """One closed-loop Locust run against ``target``: its aggregated row and CPU use."""
    host = target.url
    load_average = round(os.getloadavg()[0], 2)
    cpu_before = cpu_seconds(target.server), cpu_seconds(target.rest)
    prefix = out / f"u{users}"
    command = [
        sys.executable, "-m", "locust", "-f", str(BENCH_LOCUSTFILE),
        "--headless", "--only-summary", "--reset-stats",
        "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{duration_s}s",
        "--host", host, "--csv", str(prefix), "--exit-code-on-error", "0",
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=duration_s + 60, check=False
    )
    cpu_after = cpu_seconds(target.server), cpu_seconds(target.rest)
    (out / f"u{users}.log").write_text(result.stdout + result.stderr)
    stats_path = Path(f"{prefix}_stats.csv")
    if result.returncode != 0 or not stats_path.exists():
        fail(f"locust failed against {host} (exit {result.returncode}); see {out}/u{users}.log")
    with stats_path.open() as stats_file:
        total = next(row for row in csv.DictReader(stats_file) if row["Name"] == "Aggregated")
    return {
        "users": users,
        "load_average": load_average,
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "rps": round(float(total["Requests/s"]), 1),
        "avg_ms": round(float(total["Average Response Time"]), 1),
        "p50_ms": float(total["50%"]),
        "p95_ms": float(total["95%"]),
        "p99_ms": float(total["99%"]),
        "max_ms": float(total["Max Response Time"]),
        "locust_cpu_saturated": CPU_WARNING in result.stderr,
        "server_cpu_pct": round(100 * (cpu_after[0] - cpu_before[0]) / duration_s),
        "server_cpu_us_per_request": (
            round(1e6 * (cpu_after[0] - cpu_before[0]) / int(total["Request Count"]))
            if int(total["Request Count"])
            else None
        ),
        "rest_of_cluster_cpu_pct": (
            round(100 * (cpu_after[1] - cpu_before[1]) / duration_s) if target.rest else None
        ),
    }


MEDIAN_FIELDS = ("rps", "p50_ms", "p95_ms", "p99_ms", "server_cpu_us_per_request")


def medians(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per target and user count, the median of each figure over the rounds."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["target"], run["users"]), []).append(run)
    rows = []
    for (target, users), group in groups.items():
        row: dict[str, Any] = {"target": target, "users": users, "rounds": len(group)}
        for name in MEDIAN_FIELDS:
            values = [r[name] for r in group if r.get(name) is not None]
            row[name] = statistics.median(values) if values else None
        rows.append(row)
    return rows


def ratios(runs: list[dict[str, Any]], baseline: str) -> list[dict[str, Any]]:
    """Per user count: the baseline's rate over the gateway's, the gateway's p99 over its
    (from :func:`medians` rows when there were several rounds)."""
    by_key = {(run["target"], run["users"]): run for run in runs}
    rows = []
    for (target, users), gateway in by_key.items():
        base = by_key.get((baseline, users))
        if target != "gateway" or base is None:
            continue
        rows.append(
            {
                "users": users,
                "baseline": baseline,
                "rps_ratio": round(base["rps"] / gateway["rps"], 2) if gateway["rps"] else None,
                "gateway_share": round(gateway["rps"] / base["rps"], 2) if base["rps"] else None,
                "p99_ratio": (
                    round(gateway["p99_ms"] / base["p99_ms"], 2) if base["p99_ms"] else None
                ),
            }
        )
    return rows


def evaluate_targets(overhead: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's gateway target next to its threshold: measured (met or missed), or not
    measured when the run left out ``publish`` or ``TARGET_USERS``."""
    row = next(
        (r for r in overhead if r["baseline"] == "publish" and r["users"] == TARGET_USERS),
        None,
    )
    figure = row["gateway_share"] if row else None
    return [
        {
            "target": f"gateway req/s ÷ publish req/s at {TARGET_USERS} users",
            "figure": figure,
            "threshold": f">= {PUBLISH_SHARE_TARGET}",
            "result": (
                "not measured"
                if figure is None
                else "met"
                if figure >= PUBLISH_SHARE_TARGET
                else "missed"
            ),
        }
    ]


def print_results(
    runs: list[dict[str, Any]], overhead: list[dict[str, Any]], targets: list[dict[str, Any]]
) -> None:
    table = Table(title="POST /batches, closed loop (times in ms)", title_justify="left")
    columns = (
        "users", "round", "target", "req/s", "p50", "p95", "p99", "fail", "server CPU",
        "µs/req", "rest CPU", "backlog", "load",
    )  # fmt: skip
    for column in (*columns, "note"):
        table.add_column(column, justify="left" if column in ("target", "note") else "right")
    for run in runs:
        table.add_row(
            str(run["users"]),
            str(run.get("round", 1)),
            run["target"],
            f"{run['rps']:,.0f}",
            f"{run['p50_ms']:,.0f}",
            f"{run['p95_ms']:,.0f}",
            f"{run['p99_ms']:,.0f}",
            str(run["failures"]),
            f"{run['server_cpu_pct']}%",
            f"{run['server_cpu_us_per_request'] or 0:,}",
            "-" if run["rest_of_cluster_cpu_pct"] is None else f"{run['rest_of_cluster_cpu_pct']}%",
            str(run.get("backlog_at_start", "-")),
            f"{run['load_average']:.1f}",
            "locust CPU > 90%" if run["locust_cpu_saturated"] else "",
        )
    console.print(table)
    ratio_table = Table(title="gateway overhead (medians over rounds)", title_justify="left")
    for column in (
        "users", "baseline", "baseline req/s ÷ gateway req/s", "gateway req/s ÷ baseline",
        "gateway p99 ÷ baseline",
    ):  # fmt: skip
        ratio_table.add_column(column, justify="right")
    for row in overhead:
        ratio_table.add_row(
            str(row["users"]),
            row["baseline"],
            f"{row['rps_ratio']}x",
            f"{row['gateway_share']}",
            f"{row['p99_ratio']}x",
        )
    console.print(ratio_table)
    target_table = Table(title="targets", title_justify="left")
    for column in ("target", "figure", "threshold", "result"):
        target_table.add_column(column, justify="left" if column == "target" else "right")
    colour = {"met": "green", "missed": "red"}
    for target in targets:
        result = target["result"]
        target_table.add_row(
            target["target"],
            "-" if target["figure"] is None else str(target["figure"]),
            target["threshold"],
            f"[{colour[result]}]{result}[/]" if result in colour else result,
        )
    console.print(target_table)


def main(
    users: Annotated[str, typer.Option(help="comma-separated user counts")] = "10,50,100",
    duration: Annotated[int, typer.Option(min=3, max=600, help="seconds per run")] = 15,
    workers: Annotated[int, typer.Option(min=1, max=16, help="cluster workers")] = 1,
    targets: Annotated[str, typer.Option(help="gateway,bare,fastapi,publish")] = ",".join(TARGETS),
    rounds: Annotated[
        int, typer.Option(min=1, max=20, help="alternating rounds per user count (medians)")
    ] = 1,
    publish_into: Annotated[
        str, typer.Option(help="publish's jobs: 'cluster' (consumed) or 'own' namespace")
    ] = "cluster",
    warmup: Annotated[
        int, typer.Option(min=0, max=120, help="seconds of unrecorded load per target first")
    ] = 5,
    reports: Annotated[Path, typer.Option(help="folder of result folders")] = Path(
        "reports/load-bench"
    ),
    gateways_rounds: Annotated[
        int, typer.Option(min=0, max=20, help="rounds of 2 gateways vs 1 (0: skip)")
    ] = 3,
    gateway_cpus: Annotated[
        float,
        typer.Option(
            min=0,
            max=64,
            help="2 gateways vs 1 with each gateway held to this share of a CPU "
            "(a cgroup quota, as a container limit; needs root); 0: no limit",
        ),
    ] = 0.0,
) -> None:
    """Measure the gateway's submit rate and p99 next to bare uvicorn endpoints."""
    try:
        user_counts = [int(u) for u in users.split(",") if u.strip()]
    except ValueError:
        fail(f"--users {users!r} is not a comma-separated list of numbers")
    chosen = [t.strip() for t in targets.split(",") if t.strip()]
    if not user_counts or min(user_counts) < 1:
        fail("--users needs at least one count above 0")
    if unknown := set(chosen) - set(TARGETS):
        fail(f"unknown target(s) {sorted(unknown)}; use {', '.join(TARGETS)}")
    if publish_into not in PUBLISH_INTO:
        fail(f"--publish-into {publish_into!r}: use {' or '.join(PUBLISH_INTO)}")
    run_dir = new_run_dir(reports)
    try:
        settings = load_settings(
            namespace=f"bench-{uuid.uuid4().hex[:8]}",
            gateway_port=free_port(),
            run_dir=run_dir / "cluster",
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"bad setting COORD_{str(first['loc'][0]).upper()}: {first['msg']}")
    info = machine()
    console.print(
        f"{info['nproc']} cores, Python {info['python']}, load average "
        f"{info['load_average_at_start'][0]:.2f}; {duration}s per run, {rounds} round(s); "
        f"results in {run_dir}"
    )
    runs: list[dict[str, Any]] = []
    two_gateways: dict[str, Any] | None = None
    with gateway_cluster(settings, workers) as gateway, ExitStack() as baselines:
        own = settings.replace(namespace=f"{settings.namespace}-publish")
        hosts = {"gateway": gateway} | {
            name: baselines.enter_context(
                baseline_server(
                    app,
                    free_port(),
                    run_dir,
                    (settings if publish_into == "cluster" else own) if name == "publish" else None,
                    purge=publish_into == "own",
                )
            )
            for name, app in BASELINES.items()
            if name in chosen
        }
        for target in chosen if warmup else ():
            with console.status(f"{target}: warming up for {warmup}s"):
                (run_dir / target / "warmup").mkdir(parents=True, exist_ok=True)
                wait_drained(settings)
                measure(hosts[target], max(user_counts), warmup, run_dir / target / "warmup")
        for count in user_counts:
            for round_ in range(1, rounds + 1):
                for target in chosen if round_ % 2 else reversed(chosen):
                    out = run_dir / target / f"round{round_}"
                    out.mkdir(parents=True, exist_ok=True)
                    with console.status(f"{target}: {count} users for {duration}s"):
                        waiting = wait_drained(settings)
                        run = measure(hosts[target], count, duration, out)
                    runs.append(
                        {"target": target, "round": round_, "backlog_at_start": waiting, **run}
                    )
        if gateways_rounds and "gateway" in chosen:
            two_gateways = compare_gateways(
                gateway,
                gateway_groups(settings),
                settings,
                workers=workers,
                duration_s=duration,
                rounds=gateways_rounds,
                out=run_dir / "gateways",
                gateway_cpus=gateway_cpus,
            )
    summary = medians(runs)
    overhead = [row for base in BASELINES if base in chosen for row in ratios(summary, base)]
    targets_met = evaluate_targets(overhead)
    results: dict[str, Any] = {
        "machine": info,
        "settings": {
            "duration_s": duration,
            "workers": workers,
            "worker_mode": WorkerMode.PROCESSES.value,
            "rounds": rounds,
            "warmup_s": warmup,
            "publish_into": publish_into,
            "body": {"kind": "io", "count": 1, "params": {"io_ms": 0}},
            "finished_at": time.time(),
        },
        "runs": runs,
        "medians": summary,
        "overhead": overhead,
        "targets": targets_met,
        "two_gateways": two_gateways,
    }
    charts = gateway_charts(
        results, run_dir, share_target=PUBLISH_SHARE_TARGET, target_users=TARGET_USERS
    )
    results["charts"] = charts
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    point_latest(run_dir)
    print_results(runs, overhead, targets_met)
    if two_gateways is not None:
        print_gateways(two_gateways)
    console.print(f"results: {run_dir / 'results.json'}")
    for line in charts_lines(run_dir, charts, GATEWAY_CHARTS):
        console.print(line, highlight=False)


# Two gateway processes on one port (COORD_GATEWAYS=2, SO_REUSEPORT) against one, at
# TARGET_USERS single-job submits: alternating rounds, medians, and the CPU of every
# process, so a missed target shows where the cores went.

TWO_GATEWAYS_TARGET = 1.3
OTHER_WORK = "other work (neighbours, the idle cluster)"
"""2 gateways' submit rate over 1 gateway's, medians of the same run's rounds."""


def listening_pid(port: int) -> int | None:
    """The process listening on ``port`` (RabbitMQ, Redis), to count its CPU time."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return conn.pid
    return None


def gateway_groups(settings: Settings) -> dict[str, list[int]]:
    """:func:`process_groups` of the running cluster that ``settings`` name."""
    state = ClusterState.load(settings.run_dir.resolve())
    return process_groups(state, settings) if state is not None else {}


def process_groups(state: ClusterState, settings: Settings) -> dict[str, list[int]]:
    """Named groups of pids whose CPU a round counts: each gateway, workers, the rest."""
    groups: dict[str, list[int]] = {}
    for member in state.members:
        key = member.name if member.service == "gateway" else member.service
        groups.setdefault(key, []).append(member.pid)
    for name, url, default_port in (
        ("rabbitmq", settings.amqp_url, 5672),
        ("redis", settings.redis_url, 6379),
    ):
        pid = listening_pid(host_port(url.get_secret_value(), default_port)[1])
        if pid is not None:
            groups[name] = [pid]
    return groups


def accepted_per_gateway(url: str) -> dict[str, float]:
    """``coord_jobs_accepted_total`` by instance: the share each gateway process served."""
    totals: dict[str, float] = {}
    with contextlib.suppress(httpx.HTTPError):
        for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=5).text):
            for sample in family.samples:
                if sample.name == "coord_jobs_accepted_total":
                    name = sample.labels["instance"]
                    totals[name] = totals.get(name, 0.0) + sample.value
    return totals


def machine_busy_s(times: Any) -> float:
    """CPU seconds this machine's processes used, all cores: not idle, I/O wait or the time
    the hypervisor gave to other machines (steal)."""
    return float(
        sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))
    )


def measure_with_cpu(
    target: Target, groups: dict[str, list[int]], duration_s: int, out: Path
) -> dict[str, Any]:
    """One :func:`measure` run, with the CPU of each process group, Locust, the machine and
    what else ran on it, in % of one core over the run's wall time (Locust's start and
    stop included), and the requests each gateway process answered."""
    started = time.monotonic()
    before = {name: cpu_seconds(pids) for name, pids in groups.items()}
    locust_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine_before = psutil.cpu_times()
    accepted_before = accepted_per_gateway(target.url)
    run = measure(target, TARGET_USERS, duration_s, out)
    accepted_after = accepted_per_gateway(target.url)
    machine_after = psutil.cpu_times()
    locust_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall_s = time.monotonic() - started
    cpu = {
        name: round(100 * (cpu_seconds(pids) - before[name]) / wall_s)
        for name, pids in groups.items()
    }
    cpu["locust"] = round(
        100
        * (
            locust_after.ru_utime
            + locust_after.ru_stime
            - locust_before.ru_utime
            - locust_before.ru_stime
        )
        / wall_s
    )
    ours = sum(cpu.values())
    busy = machine_busy_s(machine_after) - machine_busy_s(machine_before)
    cpu["machine (all processes)"] = round(100 * busy / wall_s)
    cpu[OTHER_WORK] = max(0, cpu["machine (all processes)"] - ours)
    return {
        **run,
        "cpu_pct": cpu,
        "accepted_per_gateway": {
            name: int(value - accepted_before.get(name, 0.0))
            for name, value in accepted_after.items()
        },
    }


def compare_gateways(
    one: Target,
    one_groups: dict[str, list[int]],
    settings: Settings,
    *,
    workers: int,
    duration_s: int,
    rounds: int,
    out: Path,
    gateway_cpus: float = 0.0,
) -> dict[str, Any]:
    """Alternate rounds on the running 1-gateway cluster and a 2-gateway one of its own;
    with ``gateway_cpus``, every gateway process of both held to that share of a CPU."""
    two_settings = settings.replace(
        namespace=f"{settings.namespace}-g2",
        gateway_port=free_port(),
        run_dir=out / "cluster",
        gateways=2,
    )
    runs: dict[str, list[dict[str, Any]]] = {"1 gateway": [], "2 gateways": []}
    try:
        with scoped_cluster(two_settings, workers=workers, mode=WorkerMode.PROCESSES) as state:
            two = Target(state.gateway_url, server=[])
            targets = {
                "1 gateway": (one, one_groups),
                "2 gateways": (two, process_groups(state, two_settings)),
            }
            limited = ExitStack()
            if gateway_cpus:
                gateway_pids = [
                    pid
                    for _, groups in targets.values()
                    for name, pids in groups.items()
                    if name.startswith("gateway")
                    for pid in pids
                ]
                limited.enter_context(cpu_limited(gateway_pids, gateway_cpus, label="coord-bench"))
            with limited:
                run_rounds(targets, runs, rounds=rounds, duration_s=duration_s, out=out)
    except CpuLimitUnavailable as exc:
        fail(f"--gateway-cpus {gateway_cpus}: {exc}")
    except (ClusterError, ServerUnavailable) as exc:
        fail(str(exc))
    medians = {name: statistics.median(r["rps"] for r in rs) for name, rs in runs.items()}
    ratio = round(medians["2 gateways"] / medians["1 gateway"], 2) if medians["1 gateway"] else None
    return {
        "users": TARGET_USERS,
        "rounds": rounds,
        "gateway_cpus": gateway_cpus or None,
        "median_rps": medians,
        "ratio": ratio,
        "target": TWO_GATEWAYS_TARGET,
        "met": ratio is not None and ratio >= TWO_GATEWAYS_TARGET,
        "cores_allow": None if gateway_cpus else cores_allow(runs["1 gateway"]),
        "runs": runs,
    }


def run_rounds(
    targets: dict[str, tuple[Target, dict[str, list[int]]]],
    runs: dict[str, list[dict[str, Any]]],
    *,
    rounds: int,
    duration_s: int,
    out: Path,
) -> None:
    """The alternating rounds of 1 and 2 gateways, each run appended to ``runs``."""
    for index in range(rounds):
        for name, (target, groups) in targets.items():
            folder = out / f"round{index + 1}-{name.replace(' ', '-')}"
            folder.mkdir(parents=True, exist_ok=True)
            with console.status(f"{name}, round {index + 1}/{rounds}: {TARGET_USERS} users"):
                runs[name].append(measure_with_cpu(target, groups, duration_s, folder))


def print_gateways(result: dict[str, Any]) -> None:
    """Rounds, the ratio next to its threshold, and the median CPU of every process."""
    runs = result["runs"]
    held = result.get("gateway_cpus")
    table = Table(
        title=f"2 gateways vs 1, {result['users']} users, single-job submits"
        + (f", each gateway held to {held:g} of a CPU" if held else ""),
        title_justify="left",
    )
    for column in ("round", "1 gateway req/s", "2 gateways req/s", "ratio", "per gateway", "load"):
        table.add_column(column, justify="right")
    for index, (one, two) in enumerate(zip(runs["1 gateway"], runs["2 gateways"], strict=True)):
        table.add_row(
            str(index + 1),
            f"{one['rps']:,.0f}",
            f"{two['rps']:,.0f}",
            f"{two['rps'] / one['rps']:.2f}" if one["rps"] else "-",
            " / ".join(str(v) for _, v in sorted(two["accepted_per_gateway"].items())),
            f"{one['load_average']:.1f} / {two['load_average']:.1f}",
        )
    console.print(table)
    ratio = result["ratio"]
    verdict = "[green]met[/]" if result["met"] else "[red]missed[/]"
    console.print(
        f"2 gateways ÷ 1 gateway = {ratio} (medians {result['median_rps']['2 gateways']:,.0f}"
        f" ÷ {result['median_rps']['1 gateway']:,.0f} req/s)   ≥ {result['target']}: {verdict}"
    )
    cpu = Table(title="CPU per process, % of one core (median of the rounds)", title_justify="left")
    cpu.add_column("process")
    for name in runs:
        cpu.add_column(name, justify="right")
    names = sorted({n for rs in runs.values() for r in rs for n in r["cpu_pct"]})
    for process in names:
        cells = []
        for rs in runs.values():
            values = [r["cpu_pct"][process] for r in rs if process in r["cpu_pct"]]
            cells.append(f"{statistics.median(values):.0f}%" if values else "-")
        cpu.add_row(process, *cells)
    console.print(cpu)
    if held:
        console.print(held_verdict(runs, held))
        return
    console.print(gateways_verdict(runs["2 gateways"]))
    bound = result.get("cores_allow")
    if bound is not None:
        console.print(
            f"at one gateway's CPU per request (the machine busy {bound['machine_pct']:.0f}% "
            f"at {bound['rps']:,.0f} req/s), these {bound['capacity_pct'] // 100} cores allow "
            f"about {bound['ratio']:.2f}x one gateway, however many gateway processes share "
            "them; more only where a second process makes each request cheaper"
        )


def cores_allow(runs: list[dict[str, Any]]) -> dict[str, float] | None:
    """The most any number of gateways could reach over one gateway on this machine if each
    request kept costing what it cost with one: all cores ÷ the machine's busy share then.

    A second process adds a core to the gateways only where the broker, Redis, workers,
    aggregator and load generator leave one; this is the ceiling to read the ratio against.
    """
    capacity = 100 * (os.cpu_count() or 1)
    machine = statistics.median(r["cpu_pct"]["machine (all processes)"] for r in runs)
    rps = statistics.median(r["rps"] for r in runs)
    if machine <= 0:
        return None
    return {
        "capacity_pct": capacity,
        "machine_pct": machine,
        "rps": rps,
        "ratio": round(capacity / machine, 2),
    }


def held_verdict(runs: dict[str, list[dict[str, Any]]], held: float) -> str:
    """What holding each gateway to ``held`` of a CPU left: the gateways at their quota,
    and the machine with room to spare, is the case the ratio is about."""
    parts = []
    for name, rs in runs.items():
        machine_pct = statistics.median(r["cpu_pct"]["machine (all processes)"] for r in rs)
        gateways = ", ".join(
            f"{process} {statistics.median(r['cpu_pct'][process] for r in rs):.0f}%"
            for process in sorted(rs[0]["cpu_pct"])
            if process.startswith("gateway")
        )
        parts.append(f"{name}: {gateways}, the machine {machine_pct:.0f}%")
    return (
        f"each gateway process held to {held:g} of a CPU ({held * 100:.0f}% of one core, a "
        f"cgroup quota as a container limit sets): {'; '.join(parts)}. With the gateways at "
        "their quota and cores to spare, the ratio is what a second gateway adds"
    )


def gateways_verdict(runs: list[dict[str, Any]]) -> str:
    """Why the ratio is what it is, from the CPU figures: saturated cores, or waiting."""
    capacity = 100 * (os.cpu_count() or 1)
    machine = statistics.median(r["cpu_pct"]["machine (all processes)"] for r in runs)
    gateways = {
        name: statistics.median(r["cpu_pct"][name] for r in runs)
        for name in runs[0]["cpu_pct"]
        if name.startswith("gateway")
    }
    each = ", ".join(f"{name} {pct:.0f}%" for name, pct in sorted(gateways.items()))
    other = statistics.median(r["cpu_pct"][OTHER_WORK] for r in runs)
    each += f", other work {other:.0f}%"
    if machine >= 0.9 * capacity:
        return (
            f"with 2 gateways the machine was busy {machine:.0f}% of {capacity}% ({each}): "
            "the gateways, broker, Redis, workers, Locust and other work share saturated "
            "cores, so a second gateway process brings its own connections and confirm "
            "window but no core of its own"
        )
    return (
        f"with 2 gateways the machine was busy {machine:.0f}% of {capacity}% ({each}): "
        "cores were left idle, so the rate is bounded by waiting (broker confirms, Redis), "
        "not by a gateway's CPU"
    )


if __name__ == "__main__":
    typer.run(main)
