from __future__ import annotations

import asyncio

import pytest

from loopdesk.customers.singleflight import SingleFlight


async def test_concurrent_callers_share_one_call() -> None:
    flight: SingleFlight[int] = SingleFlight()
    calls = 0

    async def fetch() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return 7

    results = await asyncio.gather(*(flight.run("k", fetch) for _ in range(10)))
    assert results == [7] * 10 and calls == 1
    assert len(flight) == 0
    assert await flight.run("k", fetch) == 7 and calls == 2


async def test_errors_reach_every_waiter_and_a_cancelled_waiter_does_not_cancel_others() -> None:
    flight: SingleFlight[int] = SingleFlight()

    async def boom() -> int:
        await asyncio.sleep(0.02)
        raise RuntimeError("upstream down")

    results = await asyncio.gather(
        *(flight.run("k", boom) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results)

    async def slow() -> int:
        await asyncio.sleep(0.05)
        return 1

    waiter = asyncio.create_task(flight.run("s", slow))
    other = asyncio.create_task(flight.run("s", slow))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert await other == 1
