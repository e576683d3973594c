"""A whole fetch from Loop is answered first and stored right after: the next lookup still
reads it from the store, a failed write is logged and counted, shutting down waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import OperationalError
from structlog.testing import capture_logs

from loopdesk import store as db
from loopdesk.answering import answering
from loopdesk.customers.service import CustomerService
from loopdesk.sandbox.seed import demo_emails
from tests.test_service import Service, _service

pytestmark = pytest.mark.usefixtures("instant_retries")


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Service]:
    async for s in _service(tmp_path, lookup_ttl_s=3600):
        yield s


def _customers(svc: Service) -> CustomerService:
    customers: CustomerService = svc.app.state.customers
    return customers


async def _fetched(svc: Service) -> Any:
    async with svc.store.reader() as session:
        return await db.fetched_at(session, demo_emails())


def _hold_writes(customers: CustomerService) -> asyncio.Event:
    """Whole fetches' writes wait for the event returned."""
    release = asyncio.Event()
    original = customers._write

    async def held(*args: Any, whole: bool) -> None:
        if whole:
            await release.wait()
        await original(*args, whole=whole)

    customers._write = held  # type: ignore[method-assign]
    return release


async def test_the_answer_is_sent_before_the_store_write(svc: Service) -> None:
    release = _hold_writes(_customers(svc))
    first = await asyncio.wait_for(svc.lookup(*demo_emails()), timeout=10)
    assert first.status_code == 200 and first.json()["meta"]["source"] == "sandbox"
    assert await _fetched(svc) is None  # not stored yet
    calls = svc.upstream_requests()
    # The next lookup waits for that write and is answered from the store.
    second = asyncio.create_task(svc.lookup(*demo_emails()))
    await asyncio.sleep(0.05)
    assert not second.done()
    release.set()
    body = (await asyncio.wait_for(second, timeout=10)).json()
    assert body["meta"]["source"] == "store" and body["returns"] == first.json()["returns"]
    assert svc.upstream_requests() == calls
    assert await _fetched(svc) is not None


async def test_the_store_write_begins_only_once_the_answer_has_left(svc: Service) -> None:
    customers = _customers(svc)
    order: list[str] = []
    original = customers._write

    async def recorded(*args: Any, whole: bool) -> None:
        order.append("write")
        await original(*args, whole=whole)

    customers._write = recorded  # type: ignore[method-assign]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        async def sending(message: Any) -> None:
            if message["type"] == "http.response.body":
                order.append("answer")
            await send(message)

        await svc.app(scope, receive, sending)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://loopdesk") as client:
        params = [("email", e) for e in demo_emails()]
        headers = {**svc.auth, "Cache-Control": "no-cache"}
        answered = await client.get("/v1/customers/lookup", params=params, headers=headers)
    assert answered.status_code == 200 and answered.json()["meta"]["source"] == "sandbox"
    await asyncio.wait_for(customers.settled(), timeout=10)
    assert order == ["answer", "write"]
    assert await _fetched(svc) is not None


async def test_a_lookup_waiting_for_a_write_held_for_its_own_answer_begins_it(
    svc: Service,
) -> None:
    # One answer that looks the customer up twice (a guide turn, say): the second
    # lookup waits for the first one's write, which would otherwise wait for the answer.
    customers = _customers(svc)
    with answering():
        first = await customers.lookup(demo_emails(), fresh=True)
        assert customers._writes  # held back: this answer is not sent yet
        second = await asyncio.wait_for(customers.lookup(demo_emails()), timeout=10)
    assert first.meta.source == "sandbox" and second.meta.source == "store"
    assert [r.id for r in second.returns] == [r.id for r in first.returns]


async def test_one_customers_writes_land_in_the_order_of_their_fetches(svc: Service) -> None:
    # Two fetches of one customer answered in turn: the second's write (and its
    # re-routing) waits until the first's is done, whatever the database's timing.
    customers = _customers(svc)
    order: list[str] = []
    first_may_finish = asyncio.Event()
    original = customers._write

    async def recorded(*args: Any, whole: bool) -> None:
        n = sum(1 for e in order if e.startswith("start")) + 1
        order.append(f"start {n}")
        if n == 1:
            await first_may_finish.wait()
        await original(*args, whole=whole)
        order.append(f"end {n}")

    customers._write = recorded  # type: ignore[method-assign]
    fresh = {"Cache-Control": "no-cache"}
    assert (await svc.lookup(*demo_emails(), **fresh)).status_code == 200
    assert (await svc.lookup(*demo_emails(), **fresh)).status_code == 200
    await asyncio.sleep(0.05)
    assert order == ["start 1"]  # the second write waits for the first
    first_may_finish.set()
    await asyncio.wait_for(customers.settled(), timeout=10)
    assert order == ["start 1", "end 1", "start 2", "end 2"]


async def test_a_failed_write_after_the_answer_is_logged_and_counted(svc: Service) -> None:
    customers = _customers(svc)

    async def failing(*_args: Any, whole: bool) -> None:
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    customers._write = failing  # type: ignore[method-assign]
    with capture_logs() as logs:
        answered = await svc.lookup(*demo_emails())
        assert answered.status_code == 200 and answered.json()["returns"]
        if customers._writes:
            await asyncio.wait(customers._writes, timeout=5)
    assert customers.store_writes_failed == 1
    assert any(
        e["event"] == "lookup.store_write_failed" and e["error"] == "OperationalError" for e in logs
    )
    metrics = (await svc.client.get("/metrics")).text
    assert "loopdesk_lookup_store_writes_failed_total 1.0" in metrics
    # Nothing was stored, so the next lookup asks Loop again rather than trust the store.
    again = (await svc.lookup(*demo_emails())).json()
    assert again["meta"]["source"] == "sandbox"


async def test_shutting_down_finishes_the_writes_under_way(svc: Service) -> None:
    customers = _customers(svc)
    release = _hold_writes(customers)
    assert (await svc.lookup(*demo_emails())).status_code == 200
    assert len(customers._writes) == 1
    asyncio.get_running_loop().call_later(0.1, release.set)
    await customers.aclose()
    assert not customers._writes and customers.store_writes_failed == 0
    assert await _fetched(svc) is not None


async def test_a_partial_fetch_is_stored_before_it_is_answered(svc: Service) -> None:
    svc.sandbox.state.faults.add("/notes", status=503)
    customers = _customers(svc)
    _hold_writes(customers)  # would hold only a whole fetch's write
    body = (await asyncio.wait_for(svc.lookup(*demo_emails()), timeout=10)).json()
    assert any(e["source"] == "notes" for e in body["meta"]["errors"])
    assert not customers._writes
    async with svc.store.reader() as session:
        since = datetime.now(UTC) - timedelta(days=3650)
        stored = await db.returns_for_emails(session, demo_emails(), since=since)
    assert {r.id for r in stored} == {r["id"] for r in body["returns"]}
    assert await _fetched(svc) is None  # partial: not marked fetched
