"""The launcher's gateway members: one `gateway`, or `gateway-1..N` sharing metric files."""

from __future__ import annotations

from pathlib import Path

from coordctl.local import GATEWAY_METRICS_DIR, gateway_members
from shared.metrics import MULTIPROCESS_DIR_ENV


def test_one_gateway_keeps_its_name_and_environment(tmp_path: Path) -> None:
    env = {"COORD_NAMESPACE": "x"}
    assert gateway_members(1, env, tmp_path) == [("gateway", env)]
    assert not (tmp_path / GATEWAY_METRICS_DIR).exists()


def test_a_group_gets_an_index_a_name_and_one_empty_metrics_folder(tmp_path: Path) -> None:
    leftover = tmp_path / GATEWAY_METRICS_DIR / "counter_1.db"
    leftover.parent.mkdir()
    leftover.write_text("an earlier run's counts")
    members = gateway_members(2, {"COORD_NAMESPACE": "x"}, tmp_path)
    assert [name for name, _ in members] == ["gateway-1", "gateway-2"]
    for index, (name, env) in enumerate(members, start=1):
        assert env["COORD_GATEWAYS"] == "2"
        assert env["COORD_GATEWAY_INDEX"] == str(index)
        assert env["COORD_INSTANCE"] == name
        assert env[MULTIPROCESS_DIR_ENV] == str(tmp_path / GATEWAY_METRICS_DIR)
    assert not leftover.exists()


def test_restarting_one_member_keeps_the_groups_metric_files(tmp_path: Path) -> None:
    gateway_members(2, {}, tmp_path)
    kept = tmp_path / GATEWAY_METRICS_DIR / "counter_1.db"
    kept.write_text("counts of the running group")
    ((name, env),) = gateway_members(2, {}, tmp_path, only="gateway-2")
    assert (name, env["COORD_GATEWAY_INDEX"]) == ("gateway-2", "2")
    assert kept.exists()
