"""The newcomer's promise: `make test` itself installs and starts what the tests need."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "deploy" / "prereqs" / "install.sh"


def dry_run(target: str) -> str:
    return subprocess.run(
        ["make", "-n", "-C", str(ROOT), target],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_make_test_runs_the_prerequisite_step_before_pytest() -> None:
    commands = dry_run("test").splitlines()
    prereqs = next(i for i, line in enumerate(commands) if "deploy/prereqs/install.sh" in line)
    pytest = next(i for i, line in enumerate(commands) if "-m pytest" in line)
    assert prereqs < pytest


def test_ci_runs_make_test_and_nothing_of_its_own() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [
        line.strip()
        for line in ci.splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "set ", "cd "))
    ]
    assert commands == ["make test"]


def test_prerequisites_include_the_browser_the_dashboard_test_drives() -> None:
    script = SCRIPT.read_text()
    for package in ("chromium", "chromium-driver", "redis-server", "rabbitmq-server"):
        assert f"missing+=({package})" in script


def test_the_script_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_make_test_runs_the_pytest_docker_pass_after_the_suite() -> None:
    commands = dry_run("test").splitlines()
    suite = next(i for i, line in enumerate(commands) if "-m pytest" in line)
    assert any("test-docker" in line for line in commands[suite + 1 :])
    docker_pass = dry_run("test-docker")
    assert "coordctl.podman run -- " in docker_pass and "tests/integration" in docker_pass


def test_the_container_setup_is_part_of_the_prerequisites() -> None:
    script = SCRIPT.read_text()
    assert "all) packages; servers; containers; python_ft ;;" in script
    for tool in ("podman", "runc", "netavark", "docker-compose", "debootstrap"):
        assert tool in script
    assert "/var/run/docker.sock" not in script
