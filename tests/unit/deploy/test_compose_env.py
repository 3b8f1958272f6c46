"""coordctl.compose.ensure_env_file: a fresh .env never carries the example's placeholders."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from coordctl.compose import ComposeError, ensure_env_file
from tests.unit.deploy.conftest import ROOT, env_file


def test_writes_random_passwords_readable_only_by_the_owner(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    assert ensure_env_file(target, ROOT / ".env.example") is True
    example, written = env_file(ROOT / ".env.example"), env_file(target)
    assert set(written) == set(example)
    passwords = {k: v for k, v in written.items() if k.endswith("PASSWORD")}
    assert passwords, "the example names the passwords"
    for key, value in passwords.items():
        assert value != example[key] and len(value) >= 20, key
        assert value.replace("-", "").replace("_", "").isalnum(), "URL-safe"
    assert {k: v for k, v in written.items() if k not in passwords} == {
        k: v for k, v in example.items() if k not in passwords
    }
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    second = tmp_path / "second.env"
    ensure_env_file(second, ROOT / ".env.example")
    assert env_file(second)["REDIS_PASSWORD"] != written["REDIS_PASSWORD"]


def test_keeps_an_existing_env_file(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    target.write_text("RABBITMQ_PASSWORD=mine\n")
    assert ensure_env_file(target, ROOT / ".env.example") is False
    assert target.read_text() == "RABBITMQ_PASSWORD=mine\n"


def test_without_an_example_it_says_so(tmp_path: Path) -> None:
    with pytest.raises(ComposeError, match=r"no .*example"):
        ensure_env_file(tmp_path / ".env", tmp_path / ".env.example")
