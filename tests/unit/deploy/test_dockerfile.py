"""deploy/Dockerfile and .dockerignore: one non-root image with no secret inside."""

from __future__ import annotations

import re

from tests.unit.deploy.conftest import ROOT

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
SECRET_WORDS = re.compile(r"password|passwd|secret|token|api_key|amqp://|redis://", re.I)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            found.append((keyword.upper(), arguments.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def test_builds_on_python_311_slim() -> None:
    args = dict(a.split("=", 1) for k, a in instructions() if k == "ARG" and "=" in a)
    assert args["PYTHON_IMAGE"] == "python:3.11-slim"
    assert all(a.startswith("${PYTHON_IMAGE}") for k, a in instructions() if k == "FROM")


def test_runs_as_a_non_root_user() -> None:
    users = [a for k, a in final_stage() if k == "USER"]
    assert users, "the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user.isdigit(), "a numeric uid lets Kubernetes check runAsNonRoot"


def test_no_secret_is_baked_in() -> None:
    for keyword, arguments in instructions():
        if keyword in ("ENV", "ARG", "LABEL"):
            assert not SECRET_WORDS.search(arguments), f"{keyword} {arguments}"
        if keyword in ("COPY", "ADD"):
            assert ".env" not in arguments.split(), arguments
            assert "." not in arguments.split()[:-1], "copying the whole context may copy .env"


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".env.*", ".venv", ".run", ".git", "reports"} <= ignored


def test_signals_reach_the_service_and_the_command_picks_it() -> None:
    steps = dict(final_stage())
    assert steps["ENTRYPOINT"] == '["tini", "--"]'
    assert steps["CMD"].startswith('["python", "-m", "services.')
