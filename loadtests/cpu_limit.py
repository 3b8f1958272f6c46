"""Holding running processes to a share of a CPU with the kernel's CFS quota, as a container's
CPU limit (``cpus: 0.25``, a Kubernetes ``limits.cpu``) does.

``make bench-gateway BENCH_ARGS="--gateway-cpus 0.25"`` puts each gateway process in a cgroup
of its own with that quota, so that the gateways, not the machine, run out first. On a
2-core machine the broker, Redis, workers and Locust fill the cores long before two
unlimited gateways can show what a second one adds (the bench prints that bound); held to a
quarter of a CPU each, as gateways on a real cluster get CPUs of their own, they can.

It needs root and the ``cpu`` controller: cgroup v1's ``cpu`` hierarchy or cgroup v2's
``cpu.max``. Each process goes back to the cgroup it came from on exit, and the cgroups are
removed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shared.cpus import CGROUP_ROOT, V1_CPU_DIRS, cgroup_paths

PROC = Path("/proc")
PERIOD_US = 100_000


class CpuLimitUnavailable(RuntimeError):
    """No cgroup with a CPU quota can be made here; the message says why in one line."""


@dataclass(frozen=True)
class Hierarchy:
    """Where cgroups with a CPU quota are made, and how their quota is written."""

    mount: Path
    v2: bool

    def write_quota(self, group: Path, cpus: float) -> None:
        quota_us = max(1_000, round(cpus * PERIOD_US))
        if self.v2:
            (group / "cpu.max").write_text(f"{quota_us} {PERIOD_US}\n")
        else:
            (group / "cpu.cfs_period_us").write_text(f"{PERIOD_US}\n")
            (group / "cpu.cfs_quota_us").write_text(f"{quota_us}\n")

    def cgroup_of(self, pid: int, proc: Path) -> Path:
        """The folder of the cgroup ``pid`` is in now (the hierarchy's root if unknown)."""
        try:
            v1_path, v2_path = cgroup_paths((proc / str(pid) / "cgroup").read_text())
        except OSError:
            return self.mount
        return self.mount / (v2_path if self.v2 else v1_path).lstrip("/")


def find_hierarchy(root: Path = CGROUP_ROOT) -> Hierarchy:
    """cgroup v1's ``cpu`` hierarchy, else v2 with its ``cpu`` controller enabled for new
    cgroups under the root; raises :class:`CpuLimitUnavailable` when neither is usable."""
    for name in V1_CPU_DIRS:
        mount = root / name
        if (mount / "cpu.cfs_quota_us").exists() or (mount / "cgroup.procs").exists():
            return Hierarchy(mount, v2=False)
    controllers = root / "cgroup.controllers"
    if controllers.exists():
        if "cpu" not in controllers.read_text().split():
            raise CpuLimitUnavailable(f"cgroup v2 at {root} has no cpu controller")
        try:
            (root / "cgroup.subtree_control").write_text("+cpu\n")
        except OSError as exc:
            raise CpuLimitUnavailable(
                f"cannot enable the cpu controller under {root}: {exc.strerror} (needs root)"
            ) from exc
        return Hierarchy(root, v2=True)
    raise CpuLimitUnavailable(f"no cgroup cpu controller under {root}")


@contextmanager
def cpu_limited(
    pids: Sequence[int],
    cpus: float,
    *,
    label: str,
    root: Path = CGROUP_ROOT,
    proc: Path = PROC,
) -> Iterator[list[Path]]:
    """Each of ``pids`` (all its threads) in a cgroup of its own, held to ``cpus`` of one
    CPU, until the block ends; yields the cgroups' folders."""
    if cpus <= 0:
        raise CpuLimitUnavailable(f"a CPU limit must be above 0, not {cpus}")
    hierarchy = find_hierarchy(root)
    moved: list[tuple[int, Path, Path]] = []
    try:
        for pid in pids:
            home = hierarchy.cgroup_of(pid, proc)
            group = hierarchy.mount / f"{label}-{pid}"
            try:
                group.mkdir(exist_ok=True)
                hierarchy.write_quota(group, cpus)
                (group / "cgroup.procs").write_text(f"{pid}\n")
            except OSError as exc:
                with contextlib.suppress(OSError):
                    group.rmdir()
                raise CpuLimitUnavailable(
                    f"cannot hold pid {pid} to {cpus} CPU in {group}: {exc.strerror} (needs root)"
                ) from exc
            moved.append((pid, home, group))
        yield [group for _, _, group in moved]
    finally:
        for pid, home, group in reversed(moved):
            with contextlib.suppress(OSError):
                (home / "cgroup.procs").write_text(f"{pid}\n")
            with contextlib.suppress(OSError):
                group.rmdir()
