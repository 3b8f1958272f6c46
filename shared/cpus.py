"""How many CPUs this process may really use: the pool size that ``POOL=0`` means.

``os.cpu_count()`` counts the machine's cores. Inside a container with a CPU quota
(``cpus: 1``, a Kubernetes CPU limit) that is too many: a pool sized by it oversubscribes
the quota and the kernel throttles the whole container. The real figure is the smaller of
the CPU affinity and the cgroup's quota (v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``,
v2 ``cpu.max``), rounded up, at least 1.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
SELF_CGROUP = Path("/proc/self/cgroup")
V1_CPU_DIRS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _quota_v2(directory: Path) -> float | None:
    text = _read(directory / "cpu.max")
    if text is None:
        return None
    quota, _, period = text.partition(" ")
    if quota == "max" or not period:
        return None
    return int(quota) / int(period)


def _quota_v1(directory: Path) -> float | None:
    quota, period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
    if quota is None or period is None or int(quota) <= 0:
        return None
    return int(quota) / int(period)


def _ancestors(mount: Path, relative: str) -> list[Path]:
    """The cgroup's folder under ``mount`` and every parent up to the mount itself.

    A container often sees its own cgroup mounted at the root while ``/proc/self/cgroup``
    still names the host's path, so the mount itself is always a candidate.
    """
    parts = [p for p in relative.split("/") if p]
    return [mount.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]


def cgroup_paths(proc_cgroup: str) -> tuple[str, str]:
    """A ``/proc/<pid>/cgroup`` text's paths: (cgroup v1's ``cpu`` one, cgroup v2's), each
    ``/`` where the text has none."""
    v1_path, v2_path = "/", "/"
    for line in proc_cgroup.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            v2_path = path
        elif "cpu" in controllers.split(","):
            v1_path = path
    return v1_path, v2_path


def cgroup_quota(root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP) -> float | None:
    """The tightest CPU quota of this process's cgroup and its parents, in CPUs; None: none."""
    v1_path, v2_path = cgroup_paths(_read(self_cgroup) or "")
    quotas = [
        quota
        for name in V1_CPU_DIRS
        if (root / name).is_dir()
        for directory in _ancestors(root / name, v1_path)
        if (quota := _quota_v1(directory)) is not None
    ]
    if (root / "cgroup.controllers").exists():
        quotas += [
            quota
            for directory in _ancestors(root, v2_path)
            if (quota := _quota_v2(directory)) is not None
        ]
    return min(quotas) if quotas else None


def affinity_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def available_cpus(affinity: int | None = None, quota: float | None = None) -> int:
    """min(affinity, quota rounded up), at least 1: one pool process per CPU we may use."""
    allowed = affinity if affinity is not None else affinity_cpus()
    if quota is not None:
        allowed = min(allowed, math.ceil(quota))
    return max(1, allowed)


def pool_size_for_this_process() -> int:
    return available_cpus(affinity_cpus(), cgroup_quota())
