"""Webhooks applied as Loop sends them: versions, reads from Loop, nothing lost.

Every test runs on SQLite and, when it answers, PostgreSQL (each its own database).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from loopdesk import store as db
from loopdesk.api.app import create_app
from loopdesk.customers import webhooks
from loopdesk.settings import Settings
from tests.test_service import SECRET, Service

PG_HOST = "127.0.0.1:5432"
PG_ADMIN_DSN = f"postgresql://postgres@{PG_HOST}/test"

pytestmark = pytest.mark.usefixtures("instant_retries")


async def _pg_database() -> str | None:
    name = f"loopdesk_hooks_{secrets.token_hex(6)}"
    try:
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name


async def _drop(name: str) -> None:
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def svc(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Service]:
    pg_name = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/hooks.db"
    else:
        pg_name = await _pg_database()
        if pg_name is None:
            pytest.skip(f"PostgreSQL not reachable at {PG_HOST}: PostgreSQL webhook tests skipped")
        url = f"postgresql+asyncpg://postgres@{PG_HOST}/{pg_name}"
    settings = Settings(
        database_url=url,
        loop_webhook_secret=SECRET,
        sandbox_rate_limit_per_minute=0,
        sandbox_webhooks_to_self=False,
        api_key_cache_s=0,
    )
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://loopdesk") as client:
                yield Service(app, client, "unused")
    finally:
        if pg_name:
            await _drop(pg_name)


def _loop_return(svc: Service) -> dict[str, Any]:
    """A return as the sandbox (Loop) holds it now; tests change it in place."""
    item: dict[str, Any] = next(iter(svc.sandbox.state.world.returns.values()))
    return item


def _documented(item: dict[str, Any], trigger: str = "return.updated", **changes: Any) -> Any:
    """Loop's documented return payload: no `updated_at`, `edited_at: null`."""
    body = {k: v for k, v in item.items() if k != "updated_at"}
    envelope = {"topic": "return", "trigger": trigger, "shop_id": 1}
    return {**envelope, **body, "edited_at": None, **changes}


def _reads(svc: Service) -> int:
    return svc.upstream_requests("/warehouse/return/details")


async def _stored(svc: Service, return_id: str) -> db.StoredReturn | None:
    async with svc.store.session() as session:
        return await db.stored_return(session, return_id)


async def _events(svc: Service, return_id: str | None = None) -> list[tuple[str, str | None]]:
    async with svc.store.session() as session:
        query = "SELECT status, error FROM webhook_events ORDER BY id"
        return [(r.status, r.error) for r in await session.execute(text(query))]


# --- requirement 1: versions ---------------------------------------------------------


async def test_event_without_a_version_reads_the_return_from_loop(svc: Service) -> None:
    item = _loop_return(svc)
    item.update(state="closed", updated_at="2031-01-02T03:04:05+00:00")
    # Loop's example body, `id` an integer as newer payloads send it; stale content.
    payload = _documented(item, id=int(item["id"]), state="open")
    response = await svc.webhook(payload)
    assert response.status_code == 200 and await svc.outcome(response) == "applied"
    assert _reads(svc) == 1
    stored = await _stored(svc, item["id"])
    assert stored is not None
    assert stored.normalized["state"] == "closed"  # what Loop says now, not the payload
    assert stored.updated_at.isoformat() == "2031-01-02T03:04:05+00:00"

    # The next change of that return is not taken for a duplicate of the first event.
    item.update(state="cancelled", updated_at="2031-01-03T00:00:00+00:00")
    again = await svc.webhook(_documented(item, id=int(item["id"])))
    assert await svc.outcome(again) == "applied" and _reads(svc) == 2
    assert (await _stored(svc, item["id"])).normalized["state"] == "cancelled"  # type: ignore[union-attr]


async def test_an_event_that_changes_nothing_is_not_applied(svc: Service) -> None:
    item = _loop_return(svc)
    exact = {"topic": "return", "trigger": "return.updated", **item}
    assert await svc.outcome(await svc.webhook(exact)) == "applied"
    # Same content, other bytes (the documented shape): nothing changes, nothing is read.
    same = await svc.webhook(_documented(item, id=int(item["id"])))
    assert await svc.outcome(same) == "unchanged" and _reads(svc) == 0
    # An older exact version is stale and leaves the store alone.
    older = {**exact, "state": "open", "updated_at": "2020-01-01T00:00:00+00:00"}
    assert await svc.outcome(await svc.webhook(older)) == "stale"
    stored = await _stored(svc, item["id"])
    assert stored is not None and stored.normalized["state"] == item["state"]


async def test_trigger_orders_events_of_equal_time(svc: Service) -> None:
    item = _loop_return(svc)
    at = "2032-05-05T05:05:05+00:00"
    closed = {"topic": "return", "trigger": "return.closed", **item, "updated_at": at}
    closed["state"] = "closed"
    updated = {**closed, "trigger": "return.updated", "state": "open"}
    assert await svc.outcome(await svc.webhook(closed)) == "applied"
    assert await svc.outcome(await svc.webhook(updated)) == "stale"  # arrived late
    assert (await _stored(svc, item["id"])).normalized["state"] == "closed"  # type: ignore[union-attr]


async def test_edited_at_orders_only_when_it_is_later(svc: Service) -> None:
    item = _loop_return(svc)
    await svc.webhook({"topic": "return", "trigger": "return.updated", **item})
    await svc.settled()
    before = await _stored(svc, item["id"])
    assert before is not None
    later = before.updated_at.replace(year=before.updated_at.year + 1).isoformat()
    edited = _documented(item, edited_at=later, state="flagged")
    assert await svc.outcome(await svc.webhook(edited)) == "applied"
    assert _reads(svc) == 0  # an edit after the stored version orders by itself
    after = await _stored(svc, item["id"])
    assert after is not None and after.normalized["state"] == "flagged"
    assert after.updated_at.isoformat() == later and after.version_source == "edited_at"

    # An edit time before what is stored cannot order the event: Loop is asked.
    item.update(state="closed", updated_at=later)  # Loop: closed, time unchanged
    earlier = _documented(item, edited_at="2021-01-01T00:00:00+00:00", state="open")
    assert await svc.outcome(await svc.webhook(earlier)) == "applied"
    assert _reads(svc) == 1
    final = await _stored(svc, item["id"])
    assert final is not None and final.normalized["state"] == "closed"
    assert final.updated_at.isoformat() == later  # never moved backwards


async def test_one_read_per_return_however_many_events(svc: Service) -> None:
    item = _loop_return(svc)
    item.update(state="closed", updated_at="2033-01-01T00:00:00+00:00")
    svc.sandbox.state.faults.add("/warehouse/return/details", latency_ms=200)
    payloads = [_documented(item, id=int(item["id"]), note=f"n{i}") for i in range(20)]
    responses = await asyncio.gather(*(svc.webhook(p) for p in payloads))
    assert all(r.status_code == 200 for r in responses)
    results = sorted([await svc.outcome(r) for r in responses])
    assert results.count("applied") == 1 and set(results) == {"applied", "unchanged"}
    # One read at a time: each starts after the one before it ended (200 ms each).
    starts = [at for _, path, _, at in svc.sandbox.state.faults.request_log if "details" in path]
    assert 1 <= len(starts) < len(payloads)
    assert all(b - a >= 0.19 for a, b in itertools.pairwise(starts))


# --- requirement 2: nothing lost ----------------------------------------------------


async def test_label_event_for_an_unknown_return_reads_it_from_loop(svc: Service) -> None:
    item = _loop_return(svc)
    label = {
        "topic": "label",
        "trigger": "label.updated",
        "return_id": item["id"],
        "carrier": "USPS",
        "tracking_number": "9400999",
        "label_status": "delivered",
        "label_updated_at": "2034-01-01T00:00:00+00:00",
    }
    assert await _stored(svc, item["id"]) is None
    response = await svc.webhook(label)
    assert await svc.outcome(response) == "applied" and _reads(svc) == 1
    stored = await _stored(svc, item["id"])
    assert stored is not None and stored.normalized["shipping"]["labelStatus"] == "delivered"
    assert stored.normalized["customerEmail"] == item["customer"]
    older = {**label, "label_status": "in_transit", "label_updated_at": "2033-01-01T00:00:00Z"}
    assert await svc.outcome(await svc.webhook(older)) == "stale"


async def test_label_event_for_a_return_loop_does_not_know_is_kept_failed(svc: Service) -> None:
    label = {"topic": "label", "trigger": "label.updated", "return_id": "999999999"}
    fields = {"label_status": "delivered", "label_updated_at": "2034-01-01T00:00:00Z"}
    response = await svc.webhook({**label, **fields})
    assert response.status_code == 200 and await svc.outcome(response) == "failed"
    assert await _events(svc) == [("failed", "Loop does not know this return")]
    # Kept: when the return arrives, the label event is applied on it.
    item = {**_loop_return(svc), "id": "999999999", "updated_at": "2033-01-01T00:00:00Z"}
    arrived = await svc.webhook({"topic": "return", "trigger": "return.created", **item})
    assert await svc.outcome(arrived) == "applied"
    assert [s for s, _ in await _events(svc)] == ["applied", "applied"]
    stored = await _stored(svc, "999999999")
    assert stored is not None and stored.raw["label_updated_at"] == "2034-01-01T00:00:00Z"


async def test_an_event_stored_but_not_applied_is_applied_by_its_redelivery(
    svc: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = _loop_return(svc)
    payload = {"topic": "return", "trigger": "return.updated", **item}
    real = db.write_return

    async def down(*args: Any, **kwargs: Any) -> bool:
        raise OperationalError("UPDATE returns", {}, Exception("connection lost"))

    monkeypatch.setattr(db, "write_return", down)
    first = await svc.webhook(payload)  # stored, so acknowledged; its apply fails after
    assert first.status_code == 200 and first.json()["result"] == "received"
    await svc.settled()
    [(status, error)] = await _events(svc)
    assert status == "received" and error == "database error: Exception"
    monkeypatch.setattr(db, "write_return", real)
    again = await svc.webhook(payload)  # a redelivery hands it to the applier again
    assert again.status_code == 200 and again.json()["result"] == "duplicate"
    await svc.settled()
    assert [s for s, _ in await _events(svc)] == ["applied"]
    assert await svc.outcome(await svc.webhook(payload)) == "duplicate"


async def test_loop_down_during_a_read_keeps_the_event_for_the_sweep(svc: Service) -> None:
    item = _loop_return(svc)
    svc.sandbox.state.faults.add("/warehouse/return/details", status=503)
    payload = _documented(item, id=int(item["id"]))
    answered = await svc.webhook(payload)
    assert answered.status_code == 200 and answered.json()["result"] == "received"
    await svc.settled()
    [(status, error)] = await _events(svc)
    assert status == "received" and error
    svc.sandbox.state.faults.clear()
    # The periodic sweep (and the next start-up) applies what stayed `received`.
    swept = await svc.app.state.services.webhooks.applier.sweep()
    assert swept == {"applied": 1}
    assert [s for s, _ in await _events(svc)] == ["applied"]


async def test_replay_and_start_up_apply_received_events(svc: Service) -> None:
    items = list(svc.sandbox.state.world.returns.values())[:3]
    async with svc.store.session() as session:  # stored, then the process died
        for item in items:
            body = json.dumps({"topic": "return", "trigger": "return.updated", **item}).encode()
            await db.record_event(
                session,
                dedupe_key=f"k{item['id']}",
                topic="return",
                trigger="return.updated",
                return_id=item["id"],
                body=body,
            )
    assert await webhooks.replay(svc.store, limit=1) == {"applied": 1}
    assert await webhooks.replay_received(svc.store, None) == {"applied": 2}
    assert await webhooks.replay(svc.store) == {}
    for item in items:
        assert await _stored(svc, item["id"]) is not None


# --- issue 8: unusable signed bodies are stored failed, never a 500 ------------------

DEEP = b'{"topic":"return","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def _unusable(svc: Service) -> dict[str, Any]:
    item = _loop_return(svc)
    base = {"topic": "return", "trigger": "return.updated", **item}
    return {
        "nul in trigger": {**base, "trigger": "return.up\x00dated"},
        "nul in email": {**base, "customer": "jane\x00@example.com"},
        "lone surrogate": {**base, "customer": "jane\ud800@example.com"},
        "offset out of range": {**base, "updated_at": "9999-12-31T23:59:59-23:59"},
        "year 0 in UTC": {**base, "updated_at": "0001-01-01T00:00:00+14:00"},
        "year 1": {**base, "updated_at": "0001-01-01T00:00:00+00:00"},
        "label year 1": {"topic": "label", "return_id": "1", "label_updated_at": "0001-01-01"},
        "return id too long": {**base, "id": "9" * 65},
        "label return id too long": {"topic": "label", "return_id": "1" * 200},
        "trigger too long": {**base, "trigger": "return." + "u" * 100},
        "email too long": {**base, "customer": "a" * 400 + "@example.com"},
        "no id": {"topic": "return", "trigger": "return.created"},
    }


@pytest.mark.parametrize(
    "case",
    [
        "nul in trigger",
        "nul in email",
        "lone surrogate",
        "offset out of range",
        "year 0 in UTC",
        "year 1",
        "label year 1",
        "return id too long",
        "label return id too long",
        "trigger too long",
        "email too long",
        "no id",
        "deep",
        "not json",
    ],
)
async def test_unusable_signed_events_are_stored_failed_and_acknowledged(
    svc: Service, case: str
) -> None:
    if case == "deep":
        body = DEEP
    elif case == "not json":
        body = b"\xff\xfe{"
    else:
        body = json.dumps(_unusable(svc)[case]).encode()
    response = await svc.webhook(body)
    assert response.status_code == 200, response.text
    assert await svc.outcome(response) == "failed"
    [(status, error)] = await _events(svc)
    assert status == "failed" and error
    assert "\x00" not in error
    assert await svc.outcome(await svc.webhook(body)) == "duplicate"  # Loop's retry
    assert await _stored(svc, str(_loop_return(svc)["id"])) is None
    # Unsigned, the same body is refused and not stored.
    assert (await svc.webhook(body, None)).status_code == 401


async def test_an_unsigned_deep_body_is_401(svc: Service) -> None:
    response = await svc.webhook(DEEP, "bm90IGEgc2lnbmF0dXJl")
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    assert await _events(svc) == []


# --- start-up and the CLI apply what a crash left ----------------------------------


async def _left_received(url: str, bodies: list[bytes]) -> None:
    store = await db.Store.open(url)
    try:
        async with store.session() as session:
            for index, body in enumerate(bodies):
                await db.record_event(
                    session,
                    dedupe_key=f"crash-{index}",
                    topic="return",
                    trigger="return.updated",
                    return_id=None,
                    body=body,
                )
    finally:
        await store.close()


def _crash_bodies() -> list[bytes]:
    from loopdesk.sandbox.seed import generate_world

    world = generate_world(1086, 20)
    items = list(world.returns.values())[:3]
    envelope = {"topic": "return", "trigger": "return.updated"}
    return [json.dumps({**envelope, **item}).encode() for item in items]


async def test_start_up_applies_received_events(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/crashed.db"
    await _left_received(url, _crash_bodies())
    app = create_app(Settings(database_url=url, loop_webhook_secret=SECRET))
    async with app.router.lifespan_context(app):
        for _ in range(100):
            async with app.state.store.session() as session:
                counts = await db.event_counts(session)
            if counts["applied"] == 3:
                break
            await asyncio.sleep(0.05)
    assert counts["applied"] == 3 and counts["received"] == 0


def test_cli_replay_applies_received_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from loopdesk.cli.main import app as cli

    url = f"sqlite+aiosqlite:///{tmp_path}/crashed.db"
    asyncio.run(_left_received(url, [*_crash_bodies(), b'{"topic":"return","id":"x"*}']))
    monkeypatch.setenv("LOOPDESK_DATABASE_URL", url)
    monkeypatch.delenv("LOOPDESK_LOOP_API_TOKEN", raising=False)
    runner = CliRunner()
    first = runner.invoke(cli, ["webhooks", "replay"])
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout) == {"applied": 3, "failed": 1}
    # Failed events stay listed for a person, and are tried again; nothing else is.
    again = runner.invoke(cli, ["webhooks", "replay"])
    assert json.loads(again.stdout) == {"failed": 1}
