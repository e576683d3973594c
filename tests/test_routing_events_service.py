"""End to end: a sandbox action -> Loop's signed webhook -> the store -> a changed
routing outcome -> a signed `routing.changed` event received by a local HTTP server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from loopdesk import store as db
from loopdesk.api.app import create_app
from loopdesk.routing.events import SIGNATURE_HEADER, verify
from loopdesk.sandbox.webhooks import configure_webhooks
from loopdesk.settings import Settings
from loopdesk.store import outbox as ob
from tests.routing_events_harness import Receiver, database_url, receiver  # noqa: F401

LOOP_SECRET = "loop-webhook-secret-for-tests"
ROUTING_SECRET = "routing-secret-for-tests"

pytestmark = pytest.mark.usefixtures("instant_retries")


@pytest.fixture
async def service(
    database_url: str,  # noqa: F811
    receiver: Receiver,  # noqa: F811
) -> AsyncIterator[tuple[Any, httpx.AsyncClient, dict[str, str]]]:
    settings = Settings(
        database_url=database_url,
        loop_webhook_secret=LOOP_SECRET,
        routing_webhook_urls=receiver.url,
        routing_webhook_secret=ROUTING_SECRET,
        routing_scan_interval_s=0,  # only the webhook's path here, no scan
        sandbox_rate_limit_per_minute=0,
        sandbox_webhooks_to_self=False,
        api_key_cache_s=0,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with app.state.store.session() as session:
            key = await db.create_api_key(session, "agent-console")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://loopdesk") as client:
            # The sandbox signs its state changes and sends them to our webhook route.
            configure_webhooks(
                app.state.upstream.sandbox, "http://loopdesk/webhooks/loop", LOOP_SECRET, client
            )
            yield app, client, {"Authorization": f"Bearer {key}"}


def _one_open_return(world: Any) -> tuple[list[str], str]:
    """A seeded customer whose only unfinished return is one `open` return."""
    for addresses in world.customers:
        wanted = {a.lower() for a in addresses}
        mine = [r for r in world.returns.values() if str(r["customer"]).lower() in wanted]
        unfinished = [r for r in mine if r["state"] in ("open", "review")]
        if len(unfinished) == 1 and unfinished[0]["state"] == "open":
            return list(addresses), str(unfinished[0]["id"])
    raise AssertionError("the seeded world has a customer with one open return")


async def test_a_sandbox_webhook_ends_as_a_signed_routing_event(
    service: tuple[Any, httpx.AsyncClient, dict[str, str]],
    receiver: Receiver,  # noqa: F811
) -> None:
    app, client, auth = service
    sandbox = app.state.upstream.sandbox
    emails, return_id = _one_open_return(sandbox.state.world)
    # The first lookup fetches from Loop: the customer's first outcome, no event.
    looked = await client.get(
        "/v1/customers/lookup", params=[("email", e) for e in emails], headers=auth
    )
    assert looked.status_code == 200 and looked.json()["meta"]["source"] == "sandbox"
    await app.state.customers.settled()  # the fetch is stored, and routed, after its answer
    async with app.state.store.reader() as session:
        (before,) = await ob.outcomes_page(session)
    assert before.queue in ("returns", "returns-priority")
    assert receiver.received == []

    closed = await client.post(f"/v1/returns/{return_id}/close", headers=auth)
    assert closed.status_code == 200
    await sandbox.state.webhook_tasks_drained()

    (got,) = await receiver.wait_for(1)
    assert verify(got.body, got.headers[SIGNATURE_HEADER], ROUTING_SECRET)
    event = json.loads(got.body)
    assert event["type"] == "routing.changed" and event["cause"] == "webhook"
    assert sorted(event["customer"]["emails"]) == sorted(e.lower() for e in emails)
    assert event["old"]["queue"] == before.queue and event["old"]["rule"] == before.rule
    assert event["new"]["queue"] not in ("returns", "returns-priority")
    assert event["rule"] == event["new"]["rule"]
    assert event["facts"]["has_open_return"] is False
    # The webhook's redelivery, or a later lookup, is not a second change.
    again = await client.get(
        "/v1/customers/lookup",
        params=[("email", e) for e in emails],
        headers={**auth, "Cache-Control": "no-cache"},
    )
    assert again.status_code == 200 and again.json()["meta"]["source"] == "sandbox"
    async with app.state.store.reader() as session:
        rows = await ob.outbox_rows(session)
    assert [r.event_id for r in rows] == [event["id"]]
    assert len(receiver.received) == 1


async def test_a_refresh_that_changes_the_outcome_is_announced(
    service: tuple[Any, httpx.AsyncClient, dict[str, str]],
    receiver: Receiver,  # noqa: F811
) -> None:
    """A change Loop knows but no webhook told (none configured to us): the next
    fetch from Loop finds it."""
    app, client, auth = service
    sandbox = app.state.upstream.sandbox
    emails, return_id = _one_open_return(sandbox.state.world)
    params = [("email", e) for e in emails]
    assert (await client.get("/v1/customers/lookup", params=params, headers=auth)).is_success
    sandbox.state.webhooks = None  # the sandbox stops sending webhooks
    assert (await client.post(f"/v1/returns/{return_id}/cancel", headers=auth)).is_success
    assert receiver.received == []
    fresh = {**auth, "Cache-Control": "no-cache"}
    assert (await client.get("/v1/customers/lookup", params=params, headers=fresh)).is_success
    (got,) = await receiver.wait_for(1)
    event = json.loads(got.body)
    assert event["cause"] == "refresh" and event["facts"]["has_open_return"] is False


async def test_serve_scans_at_start_up_and_stops_its_task_on_shutdown(
    database_url: str,  # noqa: F811
    receiver: Receiver,  # noqa: F811
) -> None:
    """The periodic task of the app's lifespan: a change that happened while the
    service was down (here: a last outcome the stored facts no longer give) is found by
    the scan at start-up and sent; shutdown cancels the task."""
    import asyncio

    from loopdesk.domain.normalize import normalize_return
    from tests.routing_data import raw_return

    store = await db.Store.open(database_url)
    try:
        now = datetime.now(UTC)
        raw = raw_return("7001", now, customer="sam@example.com", state="closed")
        async with store.session() as session:
            await db.upsert_returns(session, [(raw, normalize_return(raw))])
            await ob.save_outcome(
                session,
                emails=["sam@example.com"],
                queue="returns",
                priority=50,
                rule="open-return",
                tags=["return-open"],
                facts={"has_open_return": True},
                at=now - timedelta(days=1),
            )
    finally:
        await store.close()
    settings = Settings(
        database_url=database_url,
        routing_webhook_urls=receiver.url,
        routing_webhook_secret=ROUTING_SECRET,
        routing_scan_interval_s=3600,
        sandbox_webhooks_to_self=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        (got,) = await receiver.wait_for(1)
        event = json.loads(got.body)
        assert verify(got.body, got.headers[SIGNATURE_HEADER], ROUTING_SECRET)
        assert event["cause"] == "scan" and event["customer"] == {"emails": ["sam@example.com"]}
        assert (event["old"]["queue"], event["new"]["queue"]) == ("returns", "general")
        tasks = {t.get_coro().__name__ for t in asyncio.all_tasks()}
        assert "run_periodic" in tasks
    tasks = {t.get_coro().__name__ for t in asyncio.all_tasks()}
    assert "run_periodic" not in tasks
