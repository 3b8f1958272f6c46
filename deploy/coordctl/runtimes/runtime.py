"""Which interpreter the workers run under, while the rest of the cluster stays on this one.

``default`` is the interpreter running the launcher. ``ft`` is the free-threaded CPython that
``make python-ft`` builds (its venv is ``.venv-ft`` in the clone), with the GIL off; ``ft-gil``
is the same binary with ``PYTHON_GIL=1``, the "GIL on" row of the same build. A path to any
other interpreter with the worker's dependencies works too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FT_VENV = ROOT / ".venv-ft"
BUILD_SCRIPT = ROOT / "deploy" / "runtimes" / "python_ft.sh"
BUILD_HINT = "build it with `make python-ft` (about 3 minutes on 2 cores, once)"


class RuntimeName(StrEnum):
    DEFAULT = "default"
    FT = "ft"
    FT_GIL = "ft-gil"


class RuntimeUnavailable(RuntimeError):
    """The runtime asked for is not on this machine; the message says how to get it."""


@dataclass(frozen=True)
class WorkerRuntime:
    name: str
    python: str
    env: dict[str, str] = field(default_factory=dict)
    """Set on top of the cluster's environment for the workers. An empty ``PYTHON_GIL`` counts
    as unset, so a free-threaded build decides for itself (and its imports could re-enable
    the GIL: the heartbeat reports what actually happened)."""

    @property
    def is_default(self) -> bool:
        return self.name == RuntimeName.DEFAULT


def ft_python() -> Path:
    return FT_VENV / "bin" / "python"


def ft_available() -> bool:
    return ft_python().exists()


def resolve_runtime(name: str = RuntimeName.DEFAULT, python: str | None = None) -> WorkerRuntime:
    """The runtime by name, or the interpreter at ``python`` (a path wins over a name)."""
    if python:
        path = Path(python).expanduser()
        if not path.exists():
            raise RuntimeUnavailable(f"no interpreter at {python}")
        return WorkerRuntime(name=str(path), python=str(path))
    if name == RuntimeName.DEFAULT:
        return WorkerRuntime(name=RuntimeName.DEFAULT, python=sys.executable)
    if name not in (RuntimeName.FT, RuntimeName.FT_GIL):
        choices = ", ".join(r.value for r in RuntimeName)
        raise RuntimeUnavailable(f"unknown runtime {name!r}: choose one of {choices}")
    if not ft_available():
        raise RuntimeUnavailable(f"the free-threaded build is not in {FT_VENV}: {BUILD_HINT}")
    gil = "1" if name == RuntimeName.FT_GIL else ""
    return WorkerRuntime(name=name, python=str(ft_python()), env={"PYTHON_GIL": gil})


def gil_build() -> WorkerRuntime | None:
    """The GIL build of the same source, where ``make python-ft`` built it: the baseline of
    the free-threaded build's single-thread cost. It has no venv, so it times CPU steps but
    runs no workers."""
    try:
        answer = subprocess.run(
            ["bash", str(BUILD_SCRIPT), "path", "gil"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    path = answer.stdout.strip()
    return WorkerRuntime(name="gil", python=path) if path and Path(path).exists() else None


@dataclass(frozen=True)
class Identity:
    """What an interpreter says about itself when asked from outside."""

    python: str
    gil: bool


def identify(runtime: WorkerRuntime, *, timeout_s: float = 60) -> Identity:
    """Start the runtime once and ask for its version and whether the GIL is on."""
    script = (
        "import json, sys, platform, sysconfig; "
        "t = 't' if sysconfig.get_config_var('Py_GIL_DISABLED') else ''; "
        "g = getattr(sys, '_is_gil_enabled', lambda: True)(); "
        "print(json.dumps({'python': platform.python_version() + t, 'gil': bool(g)}))"
    )
    answer = subprocess.run(
        [runtime.python, "-c", script],
        env=runtime_env(runtime),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if answer.returncode != 0:
        raise RuntimeUnavailable(f"{runtime.python} does not start: {answer.stderr.strip()[-200:]}")
    data = json.loads(answer.stdout)
    return Identity(python=data["python"], gil=data["gil"])


def runtime_env(runtime: WorkerRuntime) -> dict[str, str]:
    """This process's environment with the runtime's settings on top."""
    return {**os.environ, **runtime.env}
