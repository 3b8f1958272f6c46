import asyncio
from typing import Any

from services.aggregator.pending import PendingResults


async def test_every_added_result_is_taken_exactly_once() -> None:
    pending = PendingResults()
    taken: list[Any] = []

    async def producer(start: int) -> None:
        for i in range(start, start + 200):
            pending.add(i, i)  # type: ignore[arg-type]
            if i % 17 == 0:
                await asyncio.sleep(0)

    async def consumer() -> None:
        while len(taken) < 1000:
            taken.extend(await pending.take(64))
            await asyncio.sleep(0)

    await asyncio.wait_for(
        asyncio.gather(consumer(), *(producer(k * 200) for k in range(5))), timeout=5
    )
    assert sorted(result for _, result in taken) == list(range(1000))
    assert len(pending) == 0


async def test_take_waits_until_something_is_added() -> None:
    pending = PendingResults()
    waiter = asyncio.create_task(pending.take(10))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    pending.add("m", "r")  # type: ignore[arg-type]
    assert await asyncio.wait_for(waiter, 1) == [("m", "r")]
