"""``python -m loadtests.run``: the runner behind ``make load`` and ``make load-ui``.

It checks that a cluster answers before Locust starts, so a missing cluster is one line, not
a screen of connection errors; runs Locust in its own process (Locust monkey-patches the
standard library with gevent on import); keeps every headless run in its own report folder;
and prints the totals a person wants to see at the end.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coordctl.client import GatewayClient, GatewayError
from loadtests.names import BATCH_REQUEST_TYPE, DONE_PREFIX
from loadtests.options import default_host
from loadtests.profile import DEFAULT_MIX, ProfileError, parse_mix
from loadtests.reports import new_run_dir, point_latest
from shared.settings import load_settings

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "locustfile.py"
SHAPES_FILE = HERE / "shapes.py"
RUN_TIME = re.compile(r"^(\d+h)?(\d+m)?(\d+s)?$|^\d+$")
PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}

app = typer.Typer(
    help="Drive the cluster with Locust: headless with a report, or the web UI.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
errors = Console(stderr=True, soft_wrap=True)


class Shape(StrEnum):
    CONSTANT = "constant"
    STEPS = "steps"


def fail(message: str) -> NoReturn:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(1)


def resolve_host(host: str | None) -> str:
    """``--host`` / ``LOAD_HOST``, else the gateway of the ``COORD_*`` settings."""
    if host:
        return host.rstrip("/")
    try:
        return default_host(load_settings())
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"bad setting COORD_{str(first['loc'][0]).upper()}: {first['msg']}")


def require_cluster(host: str) -> None:
    """Fail with one line unless the gateway at ``host`` answers ``/readyz`` with 200."""
    try:
        with GatewayClient(host, timeout_s=3.0) as client:
            readiness = client.readiness()
    except GatewayError as exc:
        cause = "" if exc.status_code is None else f" ({exc})"
        fail(
            f"no cluster answers at {host}{cause}: start one with `make up` "
            "or point LOAD_HOST at it"
        )
    if not readiness.ready:
        fail(f"the cluster at {host} is not ready: {readiness.checks}")


def check_options(mix: str, run_time: str | None = None) -> None:
    try:
        parse_mix(mix)
    except ProfileError as exc:
        fail(str(exc))
    if run_time is not None and not RUN_TIME.match(run_time):
        fail(f"run time {run_time!r} is not like 30s, 5m or 1h30m")


def locust_command(*args: str, shape: Shape = Shape.CONSTANT) -> list[str]:
    files = [str(LOCUSTFILE)] + ([str(SHAPES_FILE)] if shape == Shape.STEPS else [])
    return [sys.executable, "-m", "locust", "-f", ",".join(files), *args]


@app.command(context_settings=PASS_THROUGH)
def headless(
    ctx: typer.Context,
    users: Annotated[int, typer.Option("--users", "-u", min=1, help="peak users")] = 20,
    spawn_rate: Annotated[float, typer.Option("--spawn-rate", "-r", min=0.1)] = 10.0,
    run_time: Annotated[str, typer.Option("--run-time", "-t", help="e.g. 30s, 5m")] = "30s",
    mix: Annotated[str, typer.Option(help="cpu,io,mixed or weighted cpu:3,io:1")] = DEFAULT_MIX,
    host: Annotated[str | None, typer.Option(envvar="LOAD_HOST", help="gateway URL")] = None,
    shape: Annotated[Shape, typer.Option(help="constant users, or a step ramp")] = (Shape.CONSTANT),
    reports: Annotated[Path, typer.Option(help="folder of report folders")] = Path("reports/load"),
) -> None:
    """Run Locust headless; write CSV, HTML and a summary to <reports>/<timestamp>/.

    Further arguments go to Locust unchanged (after --), e.g. -- --waiters 1 --io-ms 5.
    """
    check_options(mix, run_time)
    target = resolve_host(host)
    require_cluster(target)
    run_dir = new_run_dir(reports)
    summary_path = run_dir / "summary.json"
    command = locust_command(
        "--headless",
        "--users", str(users),
        "--spawn-rate", f"{spawn_rate:g}",
        "--run-time", run_time,
        "--host", target,
        "--mix", mix,
        "--csv", str(run_dir / "locust"),
        "--html", str(run_dir / "report.html"),
        "--summary-json", str(summary_path),
        *ctx.args,
        shape=shape,
    )  # fmt: skip
    console.print(f"locust: {users} users, {run_time}, mix {mix}, against {target}")
    try:
        returncode = subprocess.run(command, check=False).returncode
    except KeyboardInterrupt:
        returncode = 130
    link = point_latest(run_dir)
    if not summary_path.exists():
        fail(f"locust exited with code {returncode} before writing a summary; see above")
    summary = json.loads(summary_path.read_text())
    print_summary(summary)
    console.print(f"report: {run_dir / 'report.html'}  (also {link}/)")
    failures = summary["groups"]["HTTP"]["failures"] + summary["groups"]["BATCH"]["failures"]
    requests = summary["groups"]["HTTP"]["requests"]
    if not requests:
        fail("no request was made; see Locust's output above")
    if failures:
        fail(f"{failures} failed requests or batches; see the Failures tab of the report")
    if returncode not in (0, 130):
        fail(f"locust exited with code {returncode}; see above")


@app.command(context_settings=PASS_THROUGH)
def ui(
    ctx: typer.Context,
    users: Annotated[int, typer.Option("--users", "-u", min=1, help="preset in the form")] = 20,
    spawn_rate: Annotated[float, typer.Option("--spawn-rate", "-r", min=0.1)] = 10.0,
    mix: Annotated[str, typer.Option(help="cpu,io,mixed or weighted cpu:3,io:1")] = DEFAULT_MIX,
    host: Annotated[str | None, typer.Option(envvar="LOAD_HOST", help="gateway URL")] = None,
    shape: Annotated[Shape, typer.Option(help="constant users, or a step ramp")] = (Shape.CONSTANT),
    web_host: Annotated[str, typer.Option(envvar="LOAD_WEB_HOST")] = "127.0.0.1",
    web_port: Annotated[int, typer.Option(envvar="LOAD_WEB_PORT")] = 8089,
) -> None:
    """Serve Locust's web UI against the running cluster (Ctrl-C stops it)."""
    check_options(mix)
    target = resolve_host(host)
    require_cluster(target)
    command = locust_command(
        "--host", target,
        "--users", str(users),
        "--spawn-rate", f"{spawn_rate:g}",
        "--mix", mix,
        "--web-host", web_host,
        "--web-port", str(web_port),
        *ctx.args,
        shape=shape,
    )  # fmt: skip
    console.print(f"Locust web UI on http://{web_host}:{web_port} against {target}")
    sys.stdout.flush()
    os.execv(command[0], command)


def milliseconds(value: Any) -> str:
    return "-" if value is None else f"{value:,.0f}"


def print_summary(summary: dict[str, Any]) -> None:
    """Totals per request type, then one line per batch kind."""
    table = Table(title="load test summary (times in ms)", title_justify="left")
    for column in ("type", "requests", "failures", "req/s", "p50", "p95", "p99", "max"):
        table.add_column(column, justify="left" if column == "type" else "right")
    labels = {
        "POST": "POST /batches",
        "GET": "GET ?wait=",
        "HTTP": "HTTP all",
        "BATCH": "BATCH all",
    }
    batch_rows = [
        (escape(r["name"].removeprefix(DONE_PREFIX)), r)
        for r in summary["rows"]
        if r["type"] == BATCH_REQUEST_TYPE
    ]
    rows = [(labels[key], summary["groups"][key]) for key in labels]
    for label, row in rows + [(f"  done {name}", row) for name, row in batch_rows]:
        if not row["requests"] and not row["failures"]:
            continue
        table.add_row(
            label,
            f"{row['requests']:,}",
            f"{row['failures']:,}",
            f"{row['rps']:.1f}",
            *(milliseconds(row[f"{key}_ms"]) for key in ("p50", "p95", "p99", "max")),
        )
    console.print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
