"""Choosing the workers' interpreter, without building one."""

from __future__ import annotations

import subprocess
import sys

import pytest

from coordctl.runtimes import runtime
from coordctl.runtimes.runtime import RuntimeUnavailable, resolve_runtime

SCRIPT = runtime.BUILD_SCRIPT


def test_default_is_this_interpreter() -> None:
    chosen = resolve_runtime()
    assert (chosen.python, chosen.env, chosen.is_default) == (sys.executable, {}, True)


def test_a_path_wins_over_the_name() -> None:
    assert resolve_runtime("ft", sys.executable).python == sys.executable


def test_a_missing_path_is_one_line() -> None:
    with pytest.raises(RuntimeUnavailable, match="no interpreter at /nowhere/python"):
        resolve_runtime(python="/nowhere/python")


def test_an_unknown_name_lists_the_choices() -> None:
    with pytest.raises(RuntimeUnavailable, match="choose one of default, ft, ft-gil"):
        resolve_runtime("pypy")


def test_without_the_build_the_error_says_how_to_make_it(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(runtime, "FT_VENV", tmp_path / ".venv-ft")
    with pytest.raises(RuntimeUnavailable, match="make python-ft"):
        resolve_runtime("ft")


def test_ft_gil_is_the_same_binary_with_the_gil_switched_on(monkeypatch, tmp_path) -> None:
    python = tmp_path / ".venv-ft" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.touch()
    monkeypatch.setattr(runtime, "FT_VENV", tmp_path / ".venv-ft")
    off, on = resolve_runtime("ft"), resolve_runtime("ft-gil")
    assert off.python == on.python == str(python)
    assert (off.env, on.env) == ({"PYTHON_GIL": ""}, {"PYTHON_GIL": "1"})


def test_the_build_script_is_valid_bash_and_names_its_cache(tmp_path) -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHON_FT_VERSION": "3.14"}
    path = subprocess.run(
        ["bash", str(SCRIPT), "path"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert path == f"{tmp_path}/.cache/coord-cluster/python/3.14t/bin/python3.14t"


def test_make_python_ft_and_make_test_go_through_the_build_script() -> None:
    root = SCRIPT.parents[2]
    make = subprocess.run(
        ["make", "-n", "-C", str(root), "python-ft"], capture_output=True, text=True, check=True
    ).stdout
    assert "deploy/runtimes/python_ft.sh" in make
    prereqs = (root / "deploy" / "prereqs" / "install.sh").read_text()
    assert "bash deploy/runtimes/python_ft.sh" in prereqs
