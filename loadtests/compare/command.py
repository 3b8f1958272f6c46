"""``cluster compare``: added to the tool through its plugin entry point (pyproject), so
the dependency runs one way: the comparison imports the tool, never the reverse."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from coordctl.cli import console, fail, settings_or_fail
from loadtests.compare.cli import NothingToCompare, print_verdicts, run_compare


def compare(
    quick: Annotated[bool, typer.Option("--quick", help="fewer scenarios, shorter runs")] = False,
    out: Annotated[Path, typer.Option(help="reports go to OUT/<timestamp>/")] = Path(
        "reports/compare"
    ),
    local: Annotated[bool, typer.Option(help="local processes even if Docker runs")] = False,
    only: Annotated[
        str | None, typer.Option(help="only the scenarios whose name contains this, e.g. cpu/")
    ] = None,
) -> None:
    """Measure one loop, threads, a process pool and replicas against the physical limit."""
    settings = settings_or_fail()
    try:
        folder, results = run_compare(
            quick=quick, out=out, base=settings, console=console, local=local, only=only
        )
    except NothingToCompare as exc:
        fail(str(exc))
    print_verdicts(results, console)
    console.print(f"report: [bold]{folder / 'report.md'}[/] (also {out / 'latest'})")
    failed = [s.name for s in results.scenarios if s.error is not None]
    if failed:
        fail(f"scenarios failed: {', '.join(failed)}; see {folder / 'report.md'}")


def register(app: typer.Typer) -> None:
    app.command()(compare)
