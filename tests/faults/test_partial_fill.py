"""Stored data standing in for the part of a fetch that failed keeps the lookup's limits."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from loopdesk.api.app import create_app
from loopdesk.settings import Settings
from tests.faults.world import Customer, write_world

API_KEY = "partial-fill-key-0123456789"
CUSTOMER = Customer(0)


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, dict]]]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/fill.db",
        sandbox_data=write_world(tmp_path / "world.json", 1),
        sandbox_rate_limit_per_minute=0,
        lookup_ttl_s=0,
        lookup_returns_per_email=1,
        api_key=API_KEY,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        world = app.state.upstream.sandbox.state.world
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://loopdesk") as client:
            yield client, world.returns


async def _lookup(client: httpx.AsyncClient) -> dict:
    response = await client.get(
        "/v1/customers/lookup",
        params=[("email", e) for e in CUSTOMER.emails],
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    assert response.status_code == 200
    return response.json()


async def test_an_odd_record_is_replaced_by_its_stored_copy(
    service: tuple[httpx.AsyncClient, dict[str, dict]],
) -> None:
    client, returns = service
    first = await _lookup(client)
    assert [r["id"] for r in first["returns"]] == [CUSTOMER.return_id(x) for x in "abc"]

    rid_b = CUSTOMER.return_id("b")
    # Loop sends b's return with no id: a record that cannot be shown (one bad field
    # alone would only blank that field).
    returns[rid_b]["id"] = None
    # and address a gains a newer return: with a limit of one per address, only it shows.
    newer = copy.deepcopy(returns[CUSTOMER.return_id("a")])
    newer["id"] = "31999999"
    newer["updated_at"] = newer["updated_at"].replace(newer["updated_at"][:4], "2099", 1)
    returns["31999999"] = newer

    body = await _lookup(client)
    errors = [(e["source"], e.get("email"), e["code"]) for e in body["meta"]["errors"]]
    assert errors == [("returns", CUSTOMER.email("b"), "invalid_upstream_data")]
    ids = [r["id"] for r in body["returns"]]
    # a: only its newest (the limit is one); b: its stored copy stands in; c: from Loop.
    assert ids == ["31999999", rid_b, CUSTOMER.return_id("c")]
    assert body["meta"]["stale"] is True and body["meta"]["asOf"]
