"""Warm lookups: a held answer's bytes, served ahead of the route, refreshed from the
store in the background before its hold lapses; everything else goes to the route."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from loopdesk import store as db
from loopdesk.api.keycache import KeyCache
from loopdesk.customers.service import CustomerService
from loopdesk.sandbox.seed import demo_emails
from tests.test_service import Service, _service

pytestmark = pytest.mark.usefixtures("instant_retries")


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Service]:
    async for s in _service(tmp_path, lookup_memory_s=0.6, lookup_ttl_s=3600):
        yield s


def _customers(svc: Service) -> CustomerService:
    customers: CustomerService = svc.app.state.customers
    return customers


def _served(svc: Service) -> dict[str, float]:
    metrics = svc.app.state.metrics
    return {source: metrics.lookups.labels(source)._value.get() for source in ("store", "sandbox")}


async def _held_answer(svc: Service) -> bytes:
    """Fetched, then read from the store (held from then on): the held bytes."""
    assert (await svc.lookup(*demo_emails())).json()["meta"]["source"] == "sandbox"
    stored = await svc.lookup(*demo_emails())
    assert stored.json()["meta"]["source"] == "store"
    assert _customers(svc).held(demo_emails()) is not None
    return stored.content


async def _change_a_stored_return(svc: Service) -> str:
    """What another worker's write looks like here: the store changes, nothing local is
    told. The newest return's state becomes `closed`."""
    view = _customers(svc).held(demo_emails())
    assert view is not None
    target = view.view.returns[0]
    async with svc.store.session() as session:
        found = await db.get_return(session, target.id)
        assert found is not None
        raw, ret = found
        changed = ret.model_copy(update={"state": "closed"})
        await db.write_return(
            session, {**raw, "state": "closed"}, changed, version_source=None, version_rank=0
        )
    return target.id


async def test_a_held_answer_is_the_routes_answer_byte_for_byte(svc: Service) -> None:
    stored = await _held_answer(svc)
    before = _served(svc)
    again = await svc.lookup(*demo_emails())
    assert again.status_code == 200 and again.content == stored
    assert again.headers["content-type"] == "application/json"
    assert int(again.headers["content-length"]) == len(stored)
    # Counted as the route counts it, under the route's path.
    assert _served(svc)["store"] == before["store"] + 1
    metrics = (await svc.client.get("/metrics")).text
    assert 'loopdesk_http_requests_total{method="GET",route="/v1/customers/lookup"' in metrics


async def test_what_the_route_refuses_is_refused_while_an_answer_is_held(svc: Service) -> None:
    await _held_answer(svc)
    emails = [("email", e) for e in demo_emails()]
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        response = await svc.client.get("/v1/customers/lookup", params=emails, headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["error"]["code"] == "unauthorized"
    bad = [*emails, ("email", "not an address")]
    response = await svc.client.get("/v1/customers/lookup", params=bad, headers=svc.auth)
    assert response.status_code == 422


async def test_no_cache_still_asks_loop_while_an_answer_is_held(svc: Service) -> None:
    await _held_answer(svc)
    calls = svc.upstream_requests()
    fresh = await svc.lookup(*demo_emails(), **{"Cache-Control": "no-cache"})
    assert fresh.json()["meta"]["source"] == "sandbox"
    assert svc.upstream_requests() > calls


async def test_the_held_answer_is_refreshed_before_its_hold_lapses(svc: Service) -> None:
    customers = _customers(svc)
    await _held_answer(svc)
    (first,) = customers._recent.values()
    changed = await _change_a_stored_return(svc)

    def state(body: dict[str, Any]) -> str:
        return str(next(r for r in body["returns"] if r["id"] == changed)["state"])

    # Within the first half of the hold: the held answer, no store read started.
    assert state((await svc.lookup(*demo_emails())).json()) != "closed"
    assert not customers._refreshing
    await asyncio.sleep(first.refresh_at - time.monotonic() + 0.01)
    assert time.monotonic() < first.until
    # Past it: still the held answer, at once, while one store read runs beside it.
    assert state((await svc.lookup(*demo_emails())).json()) != "closed"
    assert state((await svc.lookup(*demo_emails())).json()) != "closed"
    assert len(customers._refreshing) == 1
    await asyncio.wait(customers._refreshing, timeout=5)
    # The refreshed answer is held now, and for longer than the first.
    (second,) = customers._recent.values()
    assert second is not first and second.until > first.until
    assert state((await svc.lookup(*demo_emails())).json()) == "closed"


async def test_a_local_write_during_a_refresh_is_not_undone(svc: Service) -> None:
    customers = _customers(svc)
    await _held_answer(svc)
    reading = asyncio.Event()
    release = asyncio.Event()
    original = customers._read_view

    async def slow_read(*args: object) -> object:
        reading.set()
        await release.wait()
        return await original(*args)  # type: ignore[arg-type]

    customers._read_view = slow_read  # type: ignore[method-assign]
    customers._recent.clear()
    lookup = asyncio.create_task(svc.lookup(*demo_emails()))
    await reading.wait()
    customers.invalidate()  # a webhook applied meanwhile
    release.set()
    assert (await lookup).status_code == 200
    # What the read saw may predate the write: it is answered, never held.
    assert customers.held(demo_emails()) is None


async def test_a_lapsed_key_is_checked_once_for_concurrent_requests() -> None:
    cache = KeyCache(ttl_s=60)
    checks = 0

    async def check() -> str | None:
        nonlocal checks
        checks += 1
        await asyncio.sleep(0.01)
        return "console"

    names = await asyncio.gather(*(cache.verify("key-1", check) for _ in range(20)))
    assert names == ["console"] * 20 and checks == 1
    assert await cache.verify("key-1", check) == "console" and checks == 1  # cached

    async def unknown() -> str | None:
        return None

    assert await cache.verify("key-2", unknown) is None
    assert cache.get("key-2") is None  # an unknown key is not remembered
