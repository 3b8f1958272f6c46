"""A process held to a share of a CPU: the quota written where each cgroup version wants it,
the process moved in, and back to where it came from afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.cpu_limit import CpuLimitUnavailable, cpu_limited, find_hierarchy


def proc_with(tmp_path: Path, pid: int, cgroup_line: str) -> Path:
    proc = tmp_path / "proc"
    (proc / str(pid)).mkdir(parents=True)
    (proc / str(pid) / "cgroup").write_text(cgroup_line + "\n")
    return proc


def test_v1_quota_and_the_way_back(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    home = root / "cpu" / "user.slice"
    home.mkdir(parents=True)
    (root / "cpu" / "cgroup.procs").write_text("")
    proc = proc_with(tmp_path, 41, "4:cpu:/user.slice")

    with cpu_limited([41], 0.25, label="bench", root=root, proc=proc) as groups:
        (group,) = groups
        assert group == root / "cpu" / "bench-41"
        assert (group / "cpu.cfs_period_us").read_text() == "100000\n"
        assert (group / "cpu.cfs_quota_us").read_text() == "25000\n"
        assert (group / "cgroup.procs").read_text() == "41\n"
        (group / "cpu.cfs_period_us").unlink()
        (group / "cpu.cfs_quota_us").unlink()
        (group / "cgroup.procs").unlink()

    assert (home / "cgroup.procs").read_text() == "41\n"
    assert not (root / "cpu" / "bench-41").exists()


def test_v2_quota_in_cpu_max(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "system.slice" / "x.service").mkdir(parents=True)
    proc = proc_with(tmp_path, 7, "0::/system.slice/x.service")

    with cpu_limited([7], 0.5, label="bench", root=root, proc=proc) as (group,):
        assert (group / "cpu.max").read_text() == "50000 100000\n"
        assert (root / "cgroup.subtree_control").read_text() == "+cpu\n"

    assert (root / "system.slice" / "x.service" / "cgroup.procs").read_text() == "7\n"


def test_no_cpu_controller_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("memory pids\n")
    with pytest.raises(CpuLimitUnavailable, match="no cpu controller"):
        find_hierarchy(tmp_path)
    with (
        pytest.raises(CpuLimitUnavailable, match="above 0"),
        cpu_limited([1], 0, label="bench", root=tmp_path),
    ):
        pass
