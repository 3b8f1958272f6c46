import pytest

from loadtests.ramp import step_users


def test_stairs_rise_to_the_peak_and_hold_it() -> None:
    levels = [step_users(t, peak_users=50, steps=4, duration_s=40) for t in range(40)]
    assert sorted(set(levels)) == [13, 25, 38, 50]
    assert levels[0] == 13 and levels[9] == 13 and levels[10] == 25 and levels[39] == 50
    assert levels == sorted(levels)


def test_ramp_ends_after_the_duration() -> None:
    assert step_users(40.0, peak_users=50, steps=4, duration_s=40) is None


def test_at_least_one_user_on_the_first_stair() -> None:
    assert step_users(0, peak_users=2, steps=5, duration_s=10) == 1


@pytest.mark.parametrize(("peak", "steps", "duration"), [(0, 4, 10), (5, 0, 10), (5, 4, 0)])
def test_nonsense_ramp_is_refused(peak: int, steps: int, duration: float) -> None:
    with pytest.raises(ValueError, match="step ramp needs"):
        step_users(1, peak_users=peak, steps=steps, duration_s=duration)
