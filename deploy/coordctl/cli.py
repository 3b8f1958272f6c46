"""``cluster``: what a person does by hand — up, down, status, submit, logs.

Errors a person can act on are printed as one line and exit 1; no traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Coroutine
from importlib.metadata import entry_points
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from coordctl import compose
from coordctl.client import GatewayClient, GatewayError, api_key_of
from coordctl.engine import Engine, detect_engine, engine_env, prepare_engine
from coordctl.local import (
    ClusterError,
    ClusterState,
    cluster_status,
    start_local_cluster,
    stop_local_cluster,
)
from coordctl.logview import (
    LEVELS,
    LogFilter,
    follow_records,
    parse_line,
    print_records,
    read_records,
)
from coordctl.podman.service import PodmanError
from coordctl.runtimes.runtime import RuntimeName, RuntimeUnavailable, resolve_runtime
from coordctl.servers import ServerUnavailable
from shared.heartbeat import Beat, WorkerBeat, parse_beats
from shared.jobs import BatchRequest, JobKind, JobParams
from shared.settings import Settings, WorkerMode, load_settings

app = typer.Typer(
    help="Run and drive the coordination cluster.", no_args_is_help=True, add_completion=False
)
console = Console()
errors = Console(stderr=True)
T = TypeVar("T")


def fail(message: str) -> NoReturn:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(1)


def settings_or_fail(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"bad setting COORD_{str(first['loc'][0]).upper()}: {first['msg']}")


EngineOption = Annotated[
    Engine,
    typer.Option(
        envvar="COORD_ENGINE",
        help="auto: Docker if it answers, else our podman if set up, else processes",
    ),
]


def compose_project(settings: Settings, env: dict[str, str]) -> compose.Project:
    """The Compose project of this cluster: named after its namespace unless set."""
    name = env.get("COMPOSE_PROJECT_NAME") or settings.namespace
    return compose.Project(
        name,
        {
            **env,
            "COORD_NAMESPACE": settings.namespace,
            "COORD_GATEWAY_PORT": str(settings.gateway_port),
        },
    )


def container_engine(settings: Settings, engine: Engine) -> compose.Project | None:
    """The Compose project when a container engine runs the cluster, else None."""
    if ClusterState.load(settings.run_dir.resolve()) is not None and engine == Engine.AUTO:
        return None
    chosen = detect_engine(engine)
    if chosen == Engine.LOCAL:
        return None
    try:
        return compose_project(settings, engine_env(chosen))
    except PodmanError as exc:
        fail(str(exc))


@app.command()
def up(
    workers: Annotated[int, typer.Option(min=1, max=64, help="worker processes")] = 2,
    mode: Annotated[WorkerMode, typer.Option(help="where workers run CPU steps")] = (
        WorkerMode.PROCESSES
    ),
    pool: Annotated[int, typer.Option(min=0, max=256, help="pool size; 0 = one per core")] = 0,
    gateways: Annotated[
        int | None,
        typer.Option(
            min=1, max=64, help="gateway processes sharing the port (default COORD_GATEWAYS)"
        ),
    ] = None,
    local: Annotated[bool, typer.Option(help="local processes even if Docker runs")] = False,
    engine: EngineOption = Engine.AUTO,
    runtime: Annotated[
        RuntimeName, typer.Option(help="workers' interpreter: ft = free-threaded (make python-ft)")
    ] = RuntimeName.DEFAULT,
    python: Annotated[
        str, typer.Option(help="workers' interpreter by path (wins over --runtime)")
    ] = "",
) -> None:
    """Start the cluster and return once it is healthy."""
    settings = settings_or_fail()
    if gateways is not None:
        settings = settings_or_fail(gateways=gateways)
    try:
        workers_runtime = resolve_runtime(runtime, python or None)
    except RuntimeUnavailable as exc:
        fail(str(exc))
    chosen = Engine.LOCAL if local or not workers_runtime.is_default else detect_engine(engine)
    if chosen != Engine.LOCAL:
        gateway_url = f"http://127.0.0.1:{settings.gateway_port}"
        started = time.monotonic()
        try:
            project = compose_project(
                settings, {**prepare_engine(chosen), "COORD_GATEWAYS": str(settings.gateways)}
            )
            wrote_env = compose.compose_up(project, workers, mode, pool, gateway_url=gateway_url)
        except (compose.ComposeError, PodmanError) as exc:
            fail(str(exc))
        if wrote_env:
            console.print(f"wrote {compose.ENV_FILE} with fresh random passwords")
        console.print(
            f"cluster up in {time.monotonic() - started:.1f}s ({chosen.value}, project "
            f"[bold]{project.name}[/]): gateway at {gateway_url}   stop: make down"
        )
        return
    started = time.monotonic()
    try:
        gateway_count = "gateway" if settings.gateways == 1 else f"{settings.gateways} gateways"
        with console.status(
            f"starting {gateway_count}, {workers} {mode.value} worker(s), aggregator"
        ):
            state = start_local_cluster(
                settings,
                workers=workers,
                mode=mode,
                pool_size=pool,
                worker_python="" if workers_runtime.is_default else workers_runtime.python,
                worker_env=workers_runtime.env,
            )
    except (ClusterError, ServerUnavailable) as exc:
        fail(str(exc))
    console.print(
        f"cluster up in {time.monotonic() - started:.1f}s: {len(state.members)} processes, "
        f"namespace [bold]{state.namespace}[/], mode {state.mode}, pool {state.pool_size}\n"
        f"gateway: [bold]{state.gateway_url}[/]   logs: {state.run_dir}/logs   "
        "stop: make down"
    )


@app.command()
def down(
    local: Annotated[bool, typer.Option(help="only the local processes")] = False,
    engine: EngineOption = Engine.AUTO,
) -> None:
    """Stop exactly what `up` started."""
    settings = settings_or_fail()
    project = None if local else container_engine(settings, engine)
    if project is not None:
        try:
            compose.compose_down(project)
        except compose.ComposeError as exc:
            fail(str(exc))
        return
    stopped = stop_local_cluster(settings.run_dir, timeout_s=settings.drain_timeout_s + 10)
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "no local cluster is running")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    engine: EngineOption = Engine.AUTO,
) -> None:
    """Every service instance with its name and pid, and the depth of each queue."""
    settings = settings_or_fail()
    report = cluster_status(settings.run_dir, api_key_of(settings))
    if report is None:
        project = container_engine(settings, engine)
        if project is None:
            fail("no local cluster is running (start one with `make up`)")
        try:
            report = compose.container_status(
                project, f"http://127.0.0.1:{settings.gateway_port}", api_key_of(settings)
            )
        except compose.ComposeError as exc:
            fail(str(exc))
        if not report["members"]:
            fail(f"no container of project {project.name} exists (start one with `make up`)")
    if as_json:
        print(json.dumps(report, indent=2))
        return
    heartbeats = {beat.instance: beat for beat in parse_beats(report["instances"])}
    pid_column = "container" if "project" in report else "pid"
    table = Table(title=f"cluster {report['namespace']} at {report['gateway_url']}")
    columns = (
        "name",
        "service",
        pid_column,
        "alive",
        "mode",
        "python",
        "GIL",
        "done",
        "in flight",
        "lag p99 ms",
        "metrics port",
    )
    for column in columns:
        table.add_column(column)
    for member in report["members"]:
        beat = heartbeats.get(member.get("instance", member["name"]))
        table.add_row(
            member["name"],
            member["service"],
            str(member["pid"]),
            member.get("status", "yes") if member["alive"] else "[red]no[/]",
            *beat_cells(beat),
            str(member.get("metrics_port") or "off"),
        )
    for server in report["servers"]:
        table.add_row(server["name"], "private server", str(server["pid"]), str(server["alive"]))
    console.print(table)
    queues = Table(title="queues")
    queues.add_column("queue")
    queues.add_column("ready messages", justify="right")
    for name, depth in report["queues"].items():
        queues.add_row(name, "missing" if depth < 0 else str(depth))
    console.print(queues)


@app.command()
def submit(
    kind: Annotated[JobKind, typer.Option(help="job kind")] = JobKind.CPU,
    count: Annotated[int, typer.Option(help="jobs in the batch")] = 100,
    n: Annotated[int, typer.Option(help="cpu/mixed: count primes below n")] = 10_000,
    io_ms: Annotated[int, typer.Option(help="io/mixed: wait per I/O step")] = 50,
    wait: Annotated[float, typer.Option(help="seconds to wait for the result; 0 = do not")] = 60,
    url: Annotated[str | None, typer.Option(help="gateway URL")] = None,
) -> None:
    """Submit a batch through the gateway and print its result."""
    settings = settings_or_fail()
    try:
        request = BatchRequest(kind=kind, count=count, params=JobParams(n=n, io_ms=io_ms))
    except ValidationError as exc:
        first = exc.errors()[0]
        option = f"--{str(first['loc'][-1]).replace('_', '-')}: " if first["loc"] else ""
        fail(f"bad batch: {option}{first['msg']}")
    try:
        with GatewayClient.for_settings(settings, url=url, timeout_s=30) as client:
            accepted = client.submit(request)
            console.print(f"batch [bold]{accepted.batch_id}[/] accepted: {count} {kind} jobs")
            if wait <= 0:
                return
            result = client.wait(accepted.batch_id, timeout_s=wait)
    except GatewayError as exc:
        fail(str(exc))
    print(result.model_dump_json(indent=2))


@app.command()
def logs(
    batch: Annotated[str | None, typer.Option(help="only this batch's lines")] = None,
    job: Annotated[str | None, typer.Option(help="only this job's lines")] = None,
    service: Annotated[str | None, typer.Option(help="gateway, worker or aggregator")] = None,
    level: Annotated[str | None, typer.Option(help="minimum level")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing")] = False,
    engine: EngineOption = Engine.AUTO,
) -> None:
    """Print the cluster's log lines from every service, merged in time order."""
    if level is not None and level not in LEVELS:
        fail(f"--level must be one of {', '.join(LEVELS)}")
    settings = settings_or_fail()
    log_filter = LogFilter(batch_id=batch, job_id=job, service=service, level=level)
    log_dir = settings.run_dir / "logs"
    paths = sorted(log_dir.glob("*.log")) if log_dir.is_dir() else []
    if not paths:
        project = container_engine(settings, engine)
        if project is not None:
            _compose_logs(project, log_filter, follow)
            return
        fail(f"no log files in {log_dir} (start a cluster with `make up`)")
    try:
        if follow:
            print_records(follow_records(paths, log_filter), console)
        elif print_records(read_records(paths, log_filter), console) == 0:
            fail("no matching log lines")
    except KeyboardInterrupt:
        pass


def _compose_logs(project: compose.Project, log_filter: LogFilter, follow: bool) -> None:
    process = compose.compose_logs(project, follow)
    assert process.stdout is not None
    records = (parse_line(line) for line in process.stdout)
    matching = (r for r in records if r is not None and log_filter.matches(r))
    print_records(matching if follow else sorted(matching, key=lambda r: r["timestamp"]), console)


dead_app = typer.Typer(
    help="The dead-letter queue: list, requeue or purge what could not be processed.",
    no_args_is_help=True,
)
app.add_typer(dead_app, name="dead")


def _dead(operation: Coroutine[Any, Any, T]) -> T:
    from coordctl.dead import DeadLetterError

    for library in ("aiormq", "aio_pika"):  # their connect errors would add a second line
        logging.getLogger(library).setLevel(logging.CRITICAL)
    try:
        return asyncio.run(operation)
    except DeadLetterError as exc:
        fail(str(exc))


@dead_app.command("list")
def dead_list(
    limit: Annotated[int, typer.Option(min=0, max=1000, help="letters shown, oldest first")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """The oldest dead letters with why and where they died; they stay in the queue."""
    from coordctl.dead import list_dead

    settings = settings_or_fail()
    total, letters = _dead(list_dead(settings, limit))
    if as_json:
        print(json.dumps({"total": total, "letters": [d.to_dict() for d in letters]}, indent=2))
        return
    table = Table(title=f"{settings.names.dead_queue}: {total} dead letters, {len(letters)} shown")
    for column in ("reason", "died in", "deaths", "died at", "headers", "bytes", "body"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        table.add_row(
            letter.reason,
            letter.origin,
            str(letter.deaths),
            letter.died_at,
            " ".join(f"{k}={v}" for k, v in letter.headers.items()),
            str(letter.size),
            letter.preview,
        )
    console.print(table)


@dead_app.command("requeue")
def dead_requeue(
    limit: Annotated[int, typer.Option(min=1, max=1_000_000, help="letters moved")] = 1000,
) -> None:
    """Publish dead letters back to the queue each died in (a job gets its attempts back)."""
    from coordctl.dead import requeue_dead

    moved = _dead(requeue_dead(settings_or_fail(), limit))
    summary = ", ".join(f"{count} to {queue}" for queue, count in moved.items())
    console.print(
        f"requeued {sum(moved.values())} dead letters" + (f": {summary}" if moved else "")
    )


@dead_app.command("purge")
def dead_purge(
    recreate: Annotated[
        bool, typer.Option(help="delete and declare the queue again with the configured bounds")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
) -> None:
    """Drop every dead letter."""
    from coordctl.dead import purge_dead

    settings = settings_or_fail()
    if not yes and not typer.confirm(f"drop every letter in {settings.names.dead_queue}?"):
        fail("nothing purged")
    dropped = _dead(purge_dead(settings, recreate=recreate))
    console.print(
        f"purged {dropped} dead letters" + (" and recreated the queue" if recreate else "")
    )


PLUGIN_GROUP = "coordctl.commands"
"""Entry points that add commands to ``cluster``: the comparison adds ``compare`` this way,
so this package never imports the load tests (they import it)."""


def add_plugin_commands(target: typer.Typer) -> None:
    for entry_point in entry_points(group=PLUGIN_GROUP):
        register = entry_point.load()
        register(target)


def main() -> None:
    add_plugin_commands(app)
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()


def beat_cells(beat: Beat | None) -> tuple[str, ...]:
    """Mode, Python, GIL, jobs done, in flight and lag p99 of a heartbeat (blank: none)."""
    if beat is None:
        return ("",) * 6
    worker = beat if isinstance(beat, WorkerBeat) else None
    lag_p99 = beat.loop_lag_ms.p99
    return (
        worker.mode if worker else "",
        beat.python,
        "" if beat.gil is None else ("on" if beat.gil else "off"),
        str(beat.done),
        str(worker.in_flight) if worker else "",
        "" if lag_p99 is None else str(lag_p99),
    )
