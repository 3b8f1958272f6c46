from loadtests.compare.race import in_process_race


async def test_without_a_lock_updates_are_lost_and_with_one_none_are() -> None:
    unsafe = await in_process_race(50, 10, lock=False)
    safe = await in_process_race(50, 10, lock=True)
    assert unsafe.expected == safe.expected == 500
    assert unsafe.lost > 0
    assert unsafe.observed + unsafe.lost == unsafe.expected
    assert (safe.observed, safe.lost) == (500, 0)
