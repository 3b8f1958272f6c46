"""shared.cpus: POOL=0 means the CPUs this process may use, read from fake cgroup trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.cpus import available_cpus, cgroup_quota

CONTAINER = "/libpod_parent/libpod-abc"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def v1_tree(root: Path, *, quota: int, period: int = 100_000, where: str = "") -> Path:
    """A cgroup v1 ``cpu`` hierarchy with the quota at ``where`` (relative to the mount)."""
    write(root / "cpu" / "cpu.cfs_quota_us", "-1")
    write(root / "cpu" / "cpu.cfs_period_us", "100000")
    folder = root / "cpu" / where.strip("/") if where else root / "cpu"
    write(folder / "cpu.cfs_quota_us", str(quota))
    write(folder / "cpu.cfs_period_us", str(period))
    self_cgroup = root / "self-cgroup"
    write(self_cgroup, f"5:cpuacct:/\n4:cpu:{CONTAINER}\n1:name=systemd:{CONTAINER}")
    return self_cgroup


def v2_tree(root: Path, cpu_max: str, *, parent_max: str = "max 100000") -> Path:
    write(root / "cgroup.controllers", "cpu memory")
    write(root / "app" / "cpu.max", parent_max)
    write(root / "app" / "worker" / "cpu.max", cpu_max)
    self_cgroup = root / "self-cgroup"
    write(self_cgroup, "0::/app/worker")
    return self_cgroup


def test_v1_quota_of_the_containers_own_cgroup(tmp_path: Path) -> None:
    self_cgroup = v1_tree(tmp_path, quota=100_000, where=CONTAINER)
    assert cgroup_quota(tmp_path, self_cgroup) == 1.0


def test_v1_container_sees_its_cgroup_mounted_at_the_root(tmp_path: Path) -> None:
    """runc without a cgroup namespace: /proc/self/cgroup names a path that is not there."""
    self_cgroup = v1_tree(tmp_path, quota=150_000)
    assert cgroup_quota(tmp_path, self_cgroup) == 1.5


def test_v1_without_quota(tmp_path: Path) -> None:
    self_cgroup = v1_tree(tmp_path, quota=-1, where=CONTAINER)
    assert cgroup_quota(tmp_path, self_cgroup) is None


def test_v2_cpu_max_and_the_tightest_parent(tmp_path: Path) -> None:
    assert cgroup_quota(tmp_path, v2_tree(tmp_path, "250000 100000")) == 2.5
    assert cgroup_quota(tmp_path, v2_tree(tmp_path, "max 100000")) is None
    tight_parent = v2_tree(tmp_path, "400000 100000", parent_max="50000 100000")
    assert cgroup_quota(tmp_path, tight_parent) == 0.5


def test_no_cgroup_files_means_no_quota(tmp_path: Path) -> None:
    assert cgroup_quota(tmp_path, tmp_path / "missing") is None


@pytest.mark.parametrize(
    ("affinity", "quota", "expected"),
    [
        (2, None, 2),
        (2, 1.0, 1),
        (8, 1.5, 2),
        (2, 4.0, 2),
        (4, 0.25, 1),
    ],
)
def test_available_cpus_is_the_smaller_of_affinity_and_quota_rounded_up(
    affinity: int, quota: float | None, expected: int
) -> None:
    assert available_cpus(affinity, quota) == expected
