"""A container's CPU throttling, from its cgroup's ``cpu.stat``.

With a CPU quota the kernel hands the cgroup ``quota`` of CPU time per period
(``cfs_period_us``, 100 ms); once its processes have used it, all of them wait for the next
period. ``nr_throttled`` counts the periods in which that happened and ``throttled_time``
(v1, ns) or ``throttled_usec`` (v2) the time they waited.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

CGROUP_ROOT = Path("/sys/fs/cgroup")


class Throttling(BaseModel):
    periods: int
    throttled_periods: int
    throttled_s: float

    @property
    def throttled_share(self) -> float | None:
        return None if self.periods == 0 else self.throttled_periods / self.periods

    @property
    def wait_per_period_s(self) -> float | None:
        """How long the container's processes waited, per period: a pool that needs the
        quota plus a little is throttled in most periods, but for a moment each time."""
        return None if self.periods == 0 else self.throttled_s / self.periods

    def __add__(self, other: Throttling) -> Throttling:
        return Throttling(
            periods=self.periods + other.periods,
            throttled_periods=self.throttled_periods + other.throttled_periods,
            throttled_s=round(self.throttled_s + other.throttled_s, 3),
        )

    def __sub__(self, other: Throttling) -> Throttling:
        return Throttling(
            periods=self.periods - other.periods,
            throttled_periods=self.throttled_periods - other.throttled_periods,
            throttled_s=round(self.throttled_s - other.throttled_s, 3),
        )


ZERO = Throttling(periods=0, throttled_periods=0, throttled_s=0.0)


def parse_cpu_stat(text: str) -> Throttling:
    """``cpu.stat`` of cgroup v1 (throttled_time in ns) or v2 (throttled_usec)."""
    fields = dict(line.split(maxsplit=1) for line in text.splitlines() if " " in line)
    if "throttled_usec" in fields:
        throttled_s = int(fields["throttled_usec"]) / 1e6
    else:
        throttled_s = int(fields.get("throttled_time", "0")) / 1e9
    return Throttling(
        periods=int(fields.get("nr_periods", "0")),
        throttled_periods=int(fields.get("nr_throttled", "0")),
        throttled_s=round(throttled_s, 3),
    )


def cpu_stat_path(pid: int, root: Path = CGROUP_ROOT, proc: Path = Path("/proc")) -> Path | None:
    """Where the ``cpu.stat`` of the cgroup holding ``pid`` is, seen from this (host) side."""
    try:
        lines = (proc / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if "cpu" in controllers.split(","):
            for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
                candidate = root / mount / path.lstrip("/") / "cpu.stat"
                if candidate.exists():
                    return candidate
        if hierarchy == "0" and controllers == "":
            candidate = root / path.lstrip("/") / "cpu.stat"
            if candidate.exists():
                return candidate
    return None


def read_throttling(paths: dict[str, Path]) -> Throttling:
    """The sum over the containers' cgroups; a container gone counts as nothing."""
    total = ZERO
    for path in paths.values():
        try:
            total = total + parse_cpu_stat(path.read_text())
        except (OSError, ValueError):
            continue
    return total
