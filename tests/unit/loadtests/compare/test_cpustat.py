"""loadtests.compare.cpustat: throttling read from cgroup v1 and v2 cpu.stat files."""

from __future__ import annotations

from pathlib import Path

from loadtests.compare.cpustat import cpu_stat_path, parse_cpu_stat, read_throttling

V1 = "nr_periods 47\nnr_throttled 33\nthrottled_time 3210000000\n"
V2 = "usage_usec 9000\nnr_periods 52\nnr_throttled 35\nthrottled_usec 3210000\n"


def test_parse_v1_and_v2() -> None:
    v1, v2 = parse_cpu_stat(V1), parse_cpu_stat(V2)
    assert (v1.periods, v1.throttled_periods, v1.throttled_s) == (47, 33, 3.21)
    assert (v2.periods, v2.throttled_periods, v2.throttled_s) == (52, 35, 3.21)
    assert (v2 - v1).throttled_periods == 2


def test_cpu_stat_path_follows_the_pids_cgroup(tmp_path: Path) -> None:
    proc, root = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "42").mkdir(parents=True)
    (proc / "42" / "cgroup").write_text("5:cpuacct:/x\n4:cpu:/libpod_parent/libpod-abc\n")
    stat = root / "cpu" / "libpod_parent" / "libpod-abc" / "cpu.stat"
    stat.parent.mkdir(parents=True)
    stat.write_text(V1)
    assert cpu_stat_path(42, root, proc) == stat
    assert cpu_stat_path(43, root, proc) is None


def test_read_throttling_sums_containers_and_skips_gone_ones(tmp_path: Path) -> None:
    first, second = tmp_path / "a.stat", tmp_path / "b.stat"
    first.write_text(V1)
    second.write_text(V1)
    total = read_throttling({"w1": first, "w2": second, "gone": tmp_path / "missing"})
    assert (total.periods, total.throttled_periods) == (94, 66)
