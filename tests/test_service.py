"""The service end to end: store-first lookups, webhooks, audited actions, keys, ops."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text as db_text

from loopdesk import store as db
from loopdesk.api.app import create_app
from loopdesk.domain.webhooks import signature
from loopdesk.sandbox.seed import demo_emails
from loopdesk.settings import Settings

SECRET = "webhook-secret-for-tests"


class Service:
    def __init__(self, app: Any, client: httpx.AsyncClient, key: str) -> None:
        self.app = app
        self.client = client
        self.auth = {"Authorization": f"Bearer {key}"}

    @property
    def sandbox(self) -> Any:
        return self.app.state.upstream.sandbox

    @property
    def store(self) -> db.Store:
        store: db.Store = self.app.state.store
        return store

    def upstream_requests(self, contains: str = "") -> int:
        return sum(1 for r in self.sandbox.state.faults.request_log if contains in r[1])

    async def lookup(self, *emails: str, **headers: str) -> httpx.Response:
        params = [("email", e) for e in emails]
        return await self.client.get(
            "/v1/customers/lookup", params=params, headers={**self.auth, **headers}
        )

    async def webhook(
        self, payload: dict[str, Any] | bytes, sig: str | None = "valid"
    ) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if sig == "valid":
            headers["X-Loop-Signature"] = signature(body, SECRET)
        elif sig is not None:
            headers["X-Loop-Signature"] = sig
        return await self.client.post("/webhooks/loop", content=body, headers=headers)

    async def settled(self) -> None:
        """Wait until the webhooks answered so far are applied (and re-routed)."""
        await self.app.state.services.webhooks.settled()

    async def outcome(self, response: httpx.Response) -> str:
        """A webhook's outcome once applied: the stored event's status when it was
        answered `received` (applied after the answer), else the answer's result."""
        result: str = response.json()["result"]
        if result != "received":
            return result
        await self.settled()
        async with self.store.reader() as session:
            status = await db.event_status(session, response.json()["eventId"])
        assert status is not None
        return status

    async def events(self) -> dict[str, int]:
        async with self.store.session() as session:
            counts = await db.event_counts(session)
        return {status: n for status, n in counts.items() if n}


pytestmark = pytest.mark.usefixtures("instant_retries")


async def _service(tmp_path: Path, **overrides: Any) -> AsyncIterator[Service]:
    defaults: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/service.db",
        "loop_webhook_secret": SECRET,
        "sandbox_rate_limit_per_minute": 0,
        "http_connect_timeout_s": 0.2,
        "http_read_timeout_s": 0.5,
        "api_key_cache_s": 0,
    }
    settings = Settings(**{**defaults, **overrides})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with app.state.store.session() as session:
            key = await db.create_api_key(session, "agent-console")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://loopdesk") as client:
            yield Service(app, client, key)


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Service]:
    async for s in _service(tmp_path):
        yield s


# --- store-first lookups ---------------------------------------------------------------


async def test_second_lookup_is_served_from_the_store(svc: Service) -> None:
    first = (await svc.lookup(*demo_emails())).json()
    assert first["meta"]["source"] == "sandbox" and first["returns"]
    calls = svc.upstream_requests()
    second = (await svc.lookup(*demo_emails())).json()
    assert second["meta"]["source"] == "store"
    assert svc.upstream_requests() == calls
    assert second["returns"] == first["returns"]
    assert second["orders"] == first["orders"]
    fresh = (await svc.lookup(*demo_emails(), **{"Cache-Control": "no-cache"})).json()
    assert fresh["meta"]["source"] == "sandbox" and svc.upstream_requests() > calls


async def test_expired_ttl_fetches_again(tmp_path: Path) -> None:
    async for svc in _service(tmp_path, lookup_ttl_s=0):
        await svc.lookup(*demo_emails())
        calls = svc.upstream_requests()
        again = (await svc.lookup(*demo_emails())).json()
        assert again["meta"]["source"] == "sandbox" and svc.upstream_requests() > calls


async def test_loop_down_serves_stale_store_data(tmp_path: Path) -> None:
    async for svc in _service(tmp_path, lookup_ttl_s=0):
        first = (await svc.lookup(*demo_emails())).json()
        svc.sandbox.state.faults.add("/api/", status=503)
        response = await svc.lookup(*demo_emails())
        assert response.status_code == 200
        body = response.json()
        assert body["meta"]["stale"] is True
        assert body["meta"]["asOf"]
        assert {e["source"] for e in body["meta"]["errors"]} >= {"returns"}
        assert [r["id"] for r in body["returns"]] == [r["id"] for r in first["returns"]]


async def test_loop_down_with_nothing_stored_is_still_not_a_5xx(svc: Service) -> None:
    svc.sandbox.state.faults.add("/api/", status=500)
    response = await svc.lookup("nobody@example.com")
    assert response.status_code == 200
    assert response.json()["meta"]["stale"] is True


async def test_concurrent_lookups_share_one_fetch(svc: Service) -> None:
    svc.sandbox.state.faults.add("/api/v2/returns", latency_ms=100)
    responses = await asyncio.gather(*(svc.lookup(*demo_emails()) for _ in range(5)))
    assert all(r.status_code == 200 for r in responses)
    assert svc.upstream_requests("/api/v2/returns") == len(demo_emails())


async def test_post_lookup_with_a_gladly_profile(svc: Service) -> None:
    profile = {"primaryEmailAddress": "primary@email.com", "emailAddresses": demo_emails()}
    response = await svc.client.post("/v1/customers/lookup", json=profile, headers=svc.auth)
    assert response.status_code == 200 and response.json()["returns"]
    empty = await svc.client.post(
        "/v1/customers/lookup", json={"emailAddresses": []}, headers=svc.auth
    )
    assert empty.status_code == 422
    assert "does not have any email addresses" in empty.json()["error"]["message"]


# --- webhooks ---------------------------------------------------------------------------


def _return_payload(svc: Service, **changes: Any) -> dict[str, Any]:
    raw = dict(next(iter(svc.sandbox.state.world.returns.values())))
    return {"topic": "return", "trigger": "return.updated", "shop_id": 1, **raw, **changes}


async def _stored(svc: Service, return_id: str) -> Any:
    async with svc.store.session() as session:
        return await db.get_return(session, return_id)


async def test_webhook_stores_and_applies_a_return(svc: Service) -> None:
    payload = _return_payload(svc, state="closed", updated_at="2030-01-01T00:00:00+00:00")
    response = await svc.webhook(payload)
    assert response.status_code == 200 and await svc.outcome(response) == "applied"
    _, view = await _stored(svc, payload["id"])
    assert view.state == "closed" and view.updatedAt == "2030-01-01T00:00:00+00:00"


@pytest.mark.parametrize("tamper", ["byte", "secret", "missing"])
async def test_tampered_webhooks_are_rejected_and_not_stored(svc: Service, tamper: str) -> None:
    body = json.dumps(_return_payload(svc)).encode()
    if tamper == "byte":
        response = await svc.webhook(
            body.replace(b'"return"', b'"retur_"', 1), signature(body, SECRET)
        )
    elif tamper == "secret":
        response = await svc.webhook(body, signature(body, "another-secret"))
    else:
        response = await svc.webhook(body, None)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert await svc.events() == {}


async def test_same_event_five_times_is_applied_once(svc: Service) -> None:
    payload = _return_payload(svc, updated_at="2030-02-01T00:00:00+00:00")
    results = [await svc.outcome(await svc.webhook(payload)) for _ in range(5)]
    assert results == ["applied"] + ["duplicate"] * 4
    assert sum((await svc.events()).values()) == 1


async def test_older_event_changes_nothing(svc: Service) -> None:
    newer = _return_payload(svc, state="closed", updated_at="2030-03-01T00:00:00+00:00")
    older = _return_payload(svc, state="open", updated_at="2029-03-01T00:00:00+00:00")
    await svc.webhook(newer)
    await svc.webhook(older)
    await svc.settled()
    _, view = await _stored(svc, newer["id"])
    assert view.state == "closed"


async def test_label_event_updates_shipping(svc: Service) -> None:
    payload = _return_payload(svc, updated_at="2030-04-01T00:00:00+00:00")
    await svc.webhook(payload)
    await svc.settled()
    label = {
        "topic": "label",
        "trigger": "label.updated",
        "return_id": payload["id"],
        "carrier": "USPS",
        "tracking_number": "9400111",
        "label_status": "delivered",
        "label_updated_at": "2030-04-02T00:00:00+00:00",
    }
    assert await svc.outcome(await svc.webhook(label)) == "applied"
    _, view = await _stored(svc, payload["id"])
    assert (view.shipping.labelStatus, view.shipping.trackingNumber) == ("delivered", "9400111")


async def test_unknown_topics_are_stored_and_acknowledged(svc: Service) -> None:
    response = await svc.webhook({"topic": "giftcard", "trigger": "giftcard.requested", "id": 5})
    assert response.status_code == 200 and await svc.outcome(response) == "ignored"
    assert await svc.events() == {"ignored": 1}


async def test_failed_events_stay_failed_until_replayed(
    svc: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopdesk.customers import webhooks

    payload = _return_payload(svc, updated_at="2030-05-01T00:00:00+00:00")
    real = webhooks.normalize_return

    def broken(raw: Any) -> Any:
        raise ValueError("store hiccup")

    monkeypatch.setattr(webhooks, "normalize_return", broken)
    response = await svc.webhook(payload)
    assert response.status_code == 200 and await svc.outcome(response) == "failed"
    assert await svc.events() == {"failed": 1}
    monkeypatch.setattr(webhooks, "normalize_return", real)
    assert await webhooks.replay(svc.store) == {"applied": 1}
    assert await svc.events() == {"applied": 1}


# --- actions ---------------------------------------------------------------------------


async def test_return_link_is_audited(svc: Service) -> None:
    order = svc.sandbox.state.world.orders[0]
    body = {"orderName": order["name"], "zip": order["zip"]}
    response = await svc.client.post("/v1/actions/return-link", json=body, headers=svc.auth)
    assert response.status_code == 200 and "/#/link/" in response.json()["url"]
    refused = await svc.client.post(
        "/v1/actions/return-link", json={**body, "zip": "00000"}, headers=svc.auth
    )
    assert 400 <= refused.status_code < 500
    assert "unable to execute action" in refused.json()["error"]["message"]
    audit = (await svc.client.get("/v1/audit", headers=svc.auth)).json()["items"]
    assert [(i["action"], i["key"], i["ok"]) for i in audit] == [
        ("return-link", "agent-console", False),
        ("return-link", "agent-console", True),
    ]
    assert audit[1]["inputs"] == body and audit[1]["result"]["body"]["url"]


@pytest.mark.parametrize(
    "body", [{}, {"orderName": "", "zip": "1"}, {"orderName": "#1", "zip": ""}, {"orderName": "#1"}]
)
async def test_return_link_missing_fields_422(svc: Service, body: dict[str, Any]) -> None:
    response = await svc.client.post("/v1/actions/return-link", json=body, headers=svc.auth)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"


async def test_idempotency_key_returns_the_first_result(svc: Service) -> None:
    headers = {**svc.auth, "Idempotency-Key": "abc-1"}
    body = {"type": "email", "value": "vip@example.com"}
    first = await svc.client.post("/v1/actions/allowlist", json=body, headers=headers)
    calls = svc.upstream_requests("/allowlists")
    second = await svc.client.post("/v1/actions/allowlist", json=body, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json() and set(first.json()) == {"id", "type", "value"}
    assert svc.upstream_requests("/allowlists") == calls
    entry_id = first.json()["id"]
    deleted = await svc.client.delete(f"/v1/actions/allowlist/{entry_id}", headers=svc.auth)
    assert deleted.status_code == 200
    audit = (await svc.client.get("/v1/audit?action=allowlist.add", headers=svc.auth)).json()
    assert len(audit["items"]) == 1
    later = (await svc.client.get("/v1/audit?since=2100-01-01T00:00:00Z", headers=svc.auth)).json()
    assert later["items"] == []
    earlier = (await svc.client.get("/v1/audit?until=2000-01-01T00:00:00", headers=svc.auth)).json()
    assert earlier["items"] == []
    by_key = (await svc.client.get("/v1/audit?key=agent-console&limit=1", headers=svc.auth)).json()
    assert len(by_key["items"]) == 1 and by_key["nextBefore"] is not None


async def test_note_and_return_state_actions(svc: Service) -> None:
    world = svc.sandbox.state.world
    open_id = next(i for i, r in world.returns.items() if r["state"] == "open")
    note = await svc.client.post(
        f"/v1/returns/{open_id}/notes", json={"content": "Called the customer"}, headers=svc.auth
    )
    assert note.status_code == 200
    assert world.notes[open_id][0]["content"] == "Called the customer"
    closed = await svc.client.post(f"/v1/returns/{open_id}/close", headers=svc.auth)
    assert closed.status_code == 200
    again = await svc.client.post(f"/v1/returns/{open_id}/process", headers=svc.auth)
    assert again.status_code in (409, 422)
    assert "closed" in again.json()["error"]["message"]
    bad = await svc.client.post(f"/v1/returns/{open_id}/explode", headers=svc.auth)
    assert bad.status_code == 422


# --- keys and operations ---------------------------------------------------------------


async def test_keys_are_checked_and_revocable(svc: Service) -> None:
    assert (await svc.lookup("a@b.co")).status_code == 200
    for headers in ({}, {"Authorization": "Bearer nope"}):
        response = await svc.client.get("/v1/audit", headers=headers)
        assert response.status_code == 401
    async with svc.store.session() as session:
        assert await db.revoke_api_key(session, "agent-console")
    assert (await svc.client.get("/v1/audit", headers=svc.auth)).status_code == 401


async def test_operations_endpoints(svc: Service) -> None:
    assert (await svc.client.get("/healthz")).json() == {"status": "ok"}
    assert (await svc.client.get("/readyz")).json() == {"status": "ready"}
    await svc.lookup(*demo_emails())
    await svc.webhook({"topic": "giftcard", "trigger": "x", "id": 1})
    text = (await svc.client.get("/metrics")).text
    for name in (
        "loopdesk_http_requests_total",
        "loopdesk_upstream_calls_total",
        "loopdesk_lookups_total",
        "loopdesk_webhook_events_total",
    ):
        assert name in text


async def test_webhook_metrics_count_answers_outcomes_and_what_waits(svc: Service) -> None:
    payload = _return_payload(svc, updated_at="2030-06-01T00:00:00+00:00")
    assert (await svc.webhook(payload)).json()["result"] == "received"
    assert (await svc.webhook(payload)).json()["result"] == "duplicate"
    await svc.settled()
    text = (await svc.client.get("/metrics")).text
    assert 'loopdesk_webhook_events_total{result="received"} 1.0' in text
    assert 'loopdesk_webhook_events_total{result="duplicate"} 1.0' in text
    assert 'loopdesk_webhook_events_total{result="applied"} 1.0' in text
    assert "loopdesk_webhook_events_pending 0.0" in text


async def test_inline_applying_answers_the_outcome(tmp_path: Path) -> None:
    async for svc in _service(tmp_path, webhook_apply="inline"):
        payload = _return_payload(svc, state="closed", updated_at="2030-07-01T00:00:00+00:00")
        response = await svc.webhook(payload)
        assert response.status_code == 200 and response.json()["result"] == "applied"
        _, view = await _stored(svc, payload["id"])  # applied before the answer
        assert view.state == "closed"
        assert (await svc.webhook(payload)).json()["result"] == "duplicate"


async def test_oversized_bodies_get_413(svc: Service) -> None:
    big = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    response = await svc.webhook(big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert await svc.events() == {}


def test_key_cache_remembers_only_for_its_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    from loopdesk.api import keycache

    cache = keycache.KeyCache(ttl_s=5)
    now = [100.0]
    monkeypatch.setattr(keycache.time, "monotonic", lambda: now[0])
    cache.put("ld_secret", "console")
    assert cache.get("ld_secret") == "console" and cache.get("ld_other") is None
    assert "ld_secret" not in repr(cache._entries)
    now[0] += 6
    assert cache.get("ld_secret") is None


# --- the whole webhook path: sandbox state change -> signed webhook -> store ---------


async def test_sandbox_action_reaches_the_store_through_a_signed_webhook(svc: Service) -> None:
    from loopdesk.sandbox.webhooks import configure_webhooks

    # The sandbox delivers to the service in the same process, over ASGI.
    receiver = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=svc.app), base_url="http://loopdesk"
    )
    configure_webhooks(svc.sandbox, "http://loopdesk/webhooks/loop", SECRET, client=receiver)
    try:
        view = (await svc.lookup(*demo_emails())).json()
        target = next(r for r in view["returns"] if r["state"] == "open")
        closed = await svc.client.post(f"/v1/returns/{target['id']}/close", headers=svc.auth)
        assert closed.status_code == 200
        await svc.sandbox.state.webhook_tasks_drained()
        await svc.settled()
        _, stored = await _stored(svc, target["id"])
        assert stored.state == "closed"
        assert (await svc.events()).get("applied", 0) >= 1
        again = (await svc.lookup(*demo_emails())).json()
        assert next(r for r in again["returns"] if r["id"] == target["id"])["state"] == "closed"
    finally:
        await receiver.aclose()


# --- backfill ------------------------------------------------------------------------------


async def test_backfill_pages_every_window_and_state_without_duplicates(svc: Service) -> None:
    from datetime import UTC, datetime, timedelta

    from loopdesk.customers.backfill import backfill

    since = datetime.now(UTC) - timedelta(days=400)
    result = await backfill(svc.store, svc.app.state.upstream.returns, since=since, page_size=25)
    world = svc.sandbox.state.world.returns
    assert result.returns == len(world) and result.pages > 5 and not result.resumed
    windows = {r[2] for r in svc.sandbox.state.faults.request_log if "return/list" in r[1]}
    assert all("pageSize=25" in q for q in windows)
    async with svc.store.session() as session:
        count = await session.scalar(db_text("SELECT COUNT(*) FROM returns"))
    assert count == len(world)


async def test_backfill_resumes_after_an_interruption(svc: Service) -> None:
    from datetime import UTC, datetime, timedelta

    from loopdesk.customers.backfill import backfill
    from loopdesk.errors import LoopError

    since = datetime.now(UTC) - timedelta(days=400)
    client = svc.app.state.upstream.returns
    # Fail after a few pages: the sync stops with a typed error, its checkpoint kept.
    pages_before_failure = 4
    seen = 0
    real = client.returns_page

    async def flaky(**kwargs: Any) -> Any:
        nonlocal seen
        seen += 1
        if seen > pages_before_failure:
            raise LoopError("Loop Returns could not be reached")
        return await real(**kwargs)

    client.returns_page = flaky
    with pytest.raises(LoopError):
        await backfill(svc.store, client, since=since, page_size=25)
    client.returns_page = real
    resumed = await backfill(svc.store, client, since=since, page_size=25)
    assert resumed.resumed is True
    async with svc.store.session() as session:
        count = await session.scalar(db_text("SELECT COUNT(*) FROM returns"))
        checkpoint = await db.get_checkpoint(session, "returns-backfill")
    assert count == len(svc.sandbox.state.world.returns)
    assert checkpoint is None  # a finished sync leaves nothing to resume


async def test_in_process_sandbox_sends_its_webhooks_to_the_service(svc: Service) -> None:
    view = (await svc.lookup(*demo_emails())).json()
    target = next(r for r in view["returns"] if r["state"] == "open")
    flagged = await svc.client.post(f"/v1/returns/{target['id']}/flag", headers=svc.auth)
    assert flagged.status_code == 200
    await svc.sandbox.state.webhook_tasks_drained()
    await svc.settled()
    _, stored = await _stored(svc, target["id"])
    assert stored.state == "review"
