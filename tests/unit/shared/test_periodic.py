import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.periodic import periodic, raise_if_cancelling


async def test_a_step_runs_again_after_a_failure_it_survives() -> None:
    calls: list[int] = []

    async def step() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RedisConnectionError("away")

    task = asyncio.create_task(periodic("probe", step, 0.01, survives=(RedisConnectionError,)))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(calls) >= 3


async def test_an_unexpected_error_ends_the_loop() -> None:
    async def step() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        await periodic("probe", step, 0.01, survives=(RedisConnectionError,))


async def test_a_cancellation_a_library_turned_into_its_own_error_still_stops_the_loop() -> None:
    started = asyncio.Event()

    async def step() -> None:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise RedisConnectionError("connection closed mid-call") from None

    task = asyncio.create_task(periodic("probe", step, 0.01, survives=(RedisConnectionError,)))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=1)


async def test_raise_if_cancelling_is_quiet_outside_a_cancellation() -> None:
    raise_if_cancelling()
