"""Reading one return from Loop (`/warehouse/return/details`) and the sandbox's answer,
and the coalesced reads webhooks make."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from loopdesk import store as db
from loopdesk.customers.coalesce import Coalescer
from loopdesk.customers.webhooks import ReturnReads
from loopdesk.errors import InvalidUpstreamData, LoopNotFound
from loopdesk.loop import LoopReturnsClient
from loopdesk.sandbox.app import create_sandbox_app
from loopdesk.settings import LOOP_BASE_URL, Settings
from tests.test_webhooks_apply import _drop, _pg_database

pytestmark = pytest.mark.usefixtures("instant_retries")

DETAILS = {"id": 37603915, "state": "open", "updated_at": "2023-08-22 15:05:15"}


@pytest.fixture
async def client() -> AsyncIterator[LoopReturnsClient]:
    async with LoopReturnsClient(
        base_url=LOOP_BASE_URL, token="t", settings=Settings(loop_api_token="t")
    ) as c:
        yield c


async def test_client_reads_return_details(client: LoopReturnsClient) -> None:
    with respx.mock(base_url=LOOP_BASE_URL) as mock:
        route = mock.get("/api/v1/warehouse/return/details").respond(json=DETAILS)
        assert await client.return_details("37603915") == DETAILS
        assert route.calls.last.request.url.params["return_id"] == "37603915"
        assert route.calls.last.request.headers["X-Authorization"] == "t"


async def test_client_details_errors(client: LoopReturnsClient) -> None:
    with respx.mock(base_url=LOOP_BASE_URL) as mock:
        route = mock.get("/api/v1/warehouse/return/details")
        route.respond(404, json={"message": "No return found with this ID"})
        with pytest.raises(LoopNotFound):
            await client.return_details("1")
        route.respond(json=[1, 2])
        with pytest.raises(InvalidUpstreamData):
            await client.return_details("1")


async def test_sandbox_details_are_typed_as_loop_types_them() -> None:
    app = create_sandbox_app(Settings())
    item = next(iter(app.state.world.returns.values()))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
        headers = {"X-Authorization": "any"}
        found = await http.get(
            "/api/v1/warehouse/return/details", params={"return_id": item["id"]}, headers=headers
        )
        assert found.status_code == 200
        body = found.json()
        assert body["id"] == int(item["id"]) and body["state"] == item["state"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", body["updated_at"])
        missing = await http.get(
            "/api/v1/warehouse/return/details", params={"return_id": "1"}, headers=headers
        )
        assert missing.status_code == 404
        bad = await http.get(
            "/api/v1/warehouse/return/details", params={"return_id": "x"}, headers=headers
        )
        assert bad.status_code == 422


async def test_coalescer_runs_one_call_at_a_time_each_starting_after_its_callers() -> None:
    calls: list[int] = []
    release = asyncio.Event()

    async def call() -> int:
        calls.append(len(calls) + 1)
        number = len(calls)
        await release.wait()
        return number

    coalescer: Coalescer[int] = Coalescer()
    first = asyncio.create_task(coalescer.run("r", call))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert calls == [1]
    # Arriving while call 1 runs: they share call 2, which waits for call 1 to end.
    later = [asyncio.create_task(coalescer.run("r", call)) for _ in range(5)]
    other = asyncio.create_task(coalescer.run("s", call))  # another key runs beside
    await asyncio.sleep(0.01)
    assert len(calls) == 2  # call 1 and the other key's
    release.set()
    assert await first == 1
    results = await asyncio.gather(*later)
    assert results == [3] * 5  # one call, begun after they asked
    assert await other == 2
    assert len(calls) == 3 and len(coalescer) == 0


class _TimedReader:
    """Records when each read of a return ran."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, float, float]] = []

    async def return_details(self, return_id: str) -> dict[str, str]:
        start = time.monotonic()
        await asyncio.sleep(0.1)
        self.spans.append((return_id, start, time.monotonic()))
        return {"id": return_id}


async def test_reads_of_one_return_never_overlap_across_processes() -> None:
    name = await _pg_database()
    if name is None:
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432: cross-process read lock untested")
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    stores = [await db.Store.open(url), await db.Store.open(url)]  # two engines: two workers
    try:
        reader = _TimedReader()
        workers = [ReturnReads(reader, store) for store in stores]
        await asyncio.gather(*(w.read("42") for w in workers), workers[0].read("43"))
    finally:
        for store in stores:
            await store.close()
        await _drop(name)
    same = sorted((a, b) for rid, a, b in reader.spans if rid == "42")
    assert len(same) == 2 and same[0][1] <= same[1][0]  # one after the other
    other = next((a, b) for rid, a, b in reader.spans if rid == "43")
    assert other[0] < same[0][1]  # another return's read ran beside
