from pathlib import Path

from loadtests.reports import new_run_dir, point_latest


def test_runs_in_the_same_second_get_their_own_folder(tmp_path: Path) -> None:
    first, second = new_run_dir(tmp_path), new_run_dir(tmp_path)
    assert first != second and first.is_dir() and second.is_dir()
    assert second.name.startswith(first.name)


def test_latest_points_at_the_newest_run(tmp_path: Path) -> None:
    first = new_run_dir(tmp_path)
    point_latest(first)
    second = new_run_dir(tmp_path)
    (second / "summary.json").write_text("{}")
    link = point_latest(second)
    assert link.is_symlink() and link.resolve() == second.resolve()
    assert (link / "summary.json").read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
