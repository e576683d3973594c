"""Routing events on SQLite and PostgreSQL: the scan with a frozen clock, one event per
change, the outbox across a restart, retries with backoff, signatures, settings."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from loopdesk import store as db
from loopdesk.customers.lookup import LookupOptions
from loopdesk.domain.normalize import normalize_return
from loopdesk.errors import ConfigError
from loopdesk.routing.events import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    EventsConfig,
    sign,
    verify,
)
from loopdesk.routing.outbox import Delivered, Sender
from loopdesk.routing.reroute import Rerouter
from loopdesk.routing.rules import load_rules
from loopdesk.routing.scan import run_periodic, scan
from loopdesk.routing.service import RoutingConfig
from loopdesk.settings import Settings
from loopdesk.store import outbox as ob
from tests.routing_data import raw_return
from tests.routing_events_harness import Receiver, database_url, receiver  # noqa: F401

T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
SECRET = "routing-secret-for-tests"
EMAIL = "Jane.Doe@Example.com"


def config(*urls: str, base_s: float = 2.0) -> RoutingConfig:
    return RoutingConfig(
        load_rules(),
        RoutingConfig.from_settings(Settings()).policy,
        EventsConfig(urls=urls, secret=SecretStr(SECRET), retry_base_s=base_s, timeout_s=2.0),
    )


async def put_return(store: db.Store, return_id: str, **kwargs: Any) -> None:
    raw = raw_return(return_id, T0, customer=EMAIL, **kwargs)
    async with store.session() as session:
        await db.upsert_returns(session, [(raw, normalize_return(raw))])


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[db.Store]:  # noqa: F811
    opened = await db.Store.open(database_url)
    try:
        yield opened
    finally:
        await opened.close()


def rerouter(store: db.Store, cfg: RoutingConfig) -> Rerouter:
    return Rerouter(cfg, store, LookupOptions())


async def rows(store: db.Store) -> list[ob.OutboxRow]:
    async with store.reader() as session:
        return await ob.outbox_rows(session)


def check_delivery(got: Any, secret: str = SECRET) -> dict[str, Any]:
    """The receiver's view: a valid signature over the exact bytes, then the event."""
    assert verify(got.body, got.headers[SIGNATURE_HEADER], secret)
    assert not verify(got.body, got.headers[SIGNATURE_HEADER], "another-secret")
    event: dict[str, Any] = json.loads(got.body)
    assert got.headers[EVENT_ID_HEADER] == event["id"]
    at = datetime.fromisoformat(event["at"])
    assert int(got.headers[TIMESTAMP_HEADER]) == int(at.timestamp())
    assert got.headers["Content-Type"] == "application/json"
    return event


# --- the scan, with a frozen clock ------------------------------------------------------


async def test_scan_catches_a_refund_crossing_seven_days(
    store: db.Store,
    receiver: Receiver,  # noqa: F811
) -> None:
    # Delivered to the warehouse 5 days before T0: an open return, not yet a week.
    await put_return(store, "5001", label_days_ago=5)
    cfg = config(receiver.url)
    router = rerouter(store, cfg)
    first = await scan(router, now=T0)
    assert first.customers == 1 and first.changes == []  # the baseline, no event
    one_day_later = await scan(router, now=T0 + timedelta(days=1))
    assert one_day_later.changes == []  # 6 days: same outcome, nothing to say
    assert await rows(store) == []
    crossed = await scan(router, now=T0 + timedelta(days=2, minutes=1))
    assert len(crossed.changes) == 1
    sender = Sender(store, cfg.events)
    try:
        assert (await sender.deliver_due(T0 + timedelta(days=2, minutes=1))).sent == 1
    finally:
        await sender.aclose()
    (got,) = await receiver.wait_for(1)
    event = check_delivery(got)
    assert event["type"] == "routing.changed"
    assert event["customer"] == {"emails": ["jane.doe@example.com"]}
    assert event["old"] == {
        "queue": "returns",
        "priority": 50,
        "rule": "open-return",
        "tags": ["return-open"],
    }
    assert event["new"]["queue"] == "returns-priority" and event["new"]["priority"] == 90
    assert event["rule"] == "refund-waiting-a-week"
    assert event["facts"]["refund_pending"] is True
    assert event["facts"]["refund_pending_days"] == 7
    assert event["cause"] == "scan"
    assert datetime.fromisoformat(event["at"]) == T0 + timedelta(days=2, minutes=1)
    (row,) = await rows(store)
    assert row.status == "delivered" and row.attempts == 1 and row.event_id == event["id"]


async def test_a_closed_return_is_a_change_and_is_announced_once(store: db.Store) -> None:
    cfg = config("http://receiver.invalid/a", "http://receiver.invalid/b")
    router = rerouter(store, cfg)
    await put_return(store, "5002", label_status="in_transit")
    assert await router.reroute([EMAIL], cause="refresh", now=T0) is None  # baseline
    await put_return(store, "5002", label_status="in_transit", state="closed", updated_days_ago=0)
    # The same change seen by several paths at once (a webhook, a refresh, a scan):
    # one event, whoever sees it first.
    results = await asyncio.gather(
        router.reroute([EMAIL], cause="webhook", now=T0),
        router.reroute([EMAIL.upper()], cause="refresh", now=T0),
        scan(router, now=T0),
    )
    changes = [r for r in results[:2] if r is not None] + results[2].changes
    assert len(changes) == 1
    (change,) = changes
    assert (change.old.queue, change.new.queue) == ("returns", "general")
    # One row per configured URL for the one event, and nothing more on later scans.
    assert {(r.event_id, r.url) for r in await rows(store)} == {
        (change.id, "http://receiver.invalid/a"),
        (change.id, "http://receiver.invalid/b"),
    }
    for days in (1, 30):
        assert (await scan(router, now=T0 + timedelta(days=days))).changes == []
    assert len(await rows(store)) == 2


async def test_two_processes_announce_one_change_once(database_url: str) -> None:  # noqa: F811
    """Two stores on one database (two processes): the per-customer lock lets one
    of them write the event."""
    stores = [await db.Store.open(database_url) for _ in range(2)]
    try:
        cfg = config("http://receiver.invalid/")
        routers = [rerouter(s, cfg) for s in stores]
        await put_return(stores[0], "5003", label_days_ago=2)
        await routers[0].reroute([EMAIL], cause="refresh", now=T0)
        await put_return(stores[0], "5003", label_days_ago=2, state="cancelled")
        for _ in range(3):
            results = await asyncio.gather(
                *(r.reroute([EMAIL], cause="scan", now=T0) for r in routers * 3)
            )
            assert sum(r is not None for r in results) <= 1
        assert len(await rows(stores[0])) == 1
    finally:
        for s in stores:
            await s.close()


async def test_a_webhooks_return_reroutes_every_customer_holding_its_address(
    store: db.Store,
) -> None:
    """A lookup's customer is its set of addresses: a webhook naming one of them
    re-routes that set, and a set it is not in stays alone."""
    router = rerouter(store, config("http://receiver.invalid/"))
    await put_return(store, "5004", label_status="in_transit")
    both = ["primary@example.com", EMAIL]
    assert await router.reroute(both, cause="refresh", now=T0) is None
    assert await router.reroute(["other@example.com"], cause="refresh", now=T0) is None
    await put_return(store, "5004", label_status="in_transit", state="closed")
    changes = await router.for_return("5004", cause="webhook", now=T0)
    assert [c.emails for c in changes] == [["primary@example.com", "jane.doe@example.com"]]
    assert await router.for_return("no-such-return", cause="webhook", now=T0) == []


# --- the outbox: restarts, retries --------------------------------------------------------


async def test_outbox_rows_survive_a_restart_and_are_sent_at_start_up(
    database_url: str,  # noqa: F811
    receiver: Receiver,  # noqa: F811
) -> None:
    cfg = config(receiver.url)
    store = await db.Store.open(database_url)
    try:
        router = rerouter(store, cfg)
        await put_return(store, "5005", label_days_ago=6)
        await scan(router, now=T0)
        changed = await scan(router, now=T0 + timedelta(days=1))
        assert len(changed.changes) == 1
    finally:
        await store.close()  # stopped before sending anything
    assert receiver.received == []
    reopened = await db.Store.open(database_url)
    sender = Sender(reopened, cfg.events)
    task = asyncio.create_task(
        run_periodic(rerouter(reopened, cfg), sender, interval_s=0)  # no scan: only sends
    )
    try:
        (got,) = await receiver.wait_for(1)
        assert check_delivery(got)["id"] == changed.changes[0].id
        for _ in range(200):
            if (await rows(reopened))[0].status == "delivered":
                break
            await asyncio.sleep(0.01)
        assert [r.status for r in await rows(reopened)] == ["delivered"]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await sender.aclose()
        await reopened.close()


async def test_a_receiver_answering_500_is_retried_with_backoff_then_delivered(
    store: db.Store,
    receiver: Receiver,  # noqa: F811
) -> None:
    receiver.statuses = [500, 503, 500]
    cfg = config(receiver.url, base_s=2.0)
    router = rerouter(store, cfg)
    await put_return(store, "5006", label_status="in_transit")
    await router.reroute([EMAIL], cause="refresh", now=T0)
    await put_return(store, "5006", label_status="in_transit", state="closed")
    change = await router.reroute([EMAIL], cause="webhook", now=T0)
    assert change is not None
    sender = Sender(store, cfg.events, rng=Random(7))
    try:
        now = T0
        waits = []
        for attempt in range(1, 4):
            assert await sender.deliver_due(now) == Delivered(sent=0, failed=1)
            (row,) = await rows(store)
            assert row.status == "pending" and row.attempts == attempt
            assert row.last_error is not None and row.last_error.startswith("HTTP 5")
            wait = (row.next_attempt_at - now).total_seconds()
            # Exponential with equal jitter: within [base*2^(n-1)/2, base*2^(n-1)].
            ceiling = 2.0 * 2 ** (attempt - 1)
            assert ceiling / 2 <= wait <= ceiling
            waits.append(wait)
            # Not due a moment before its time: nothing is sent.
            early = row.next_attempt_at - timedelta(milliseconds=1)
            assert (await sender.deliver_due(early)).sent == 0
            assert len(receiver.received) == attempt
            now = row.next_attempt_at
        assert waits == sorted(waits)
        done = await sender.deliver_due(now)
        assert done.sent == 1
        (row,) = await rows(store)
        assert row.status == "delivered" and row.attempts == 4 and row.delivered_at == now
        assert (await sender.deliver_due(now + timedelta(days=1))).sent == 0
        # Delivered rows are kept for a while, then forgotten; pending ones never.
        assert await sender.prune(now + timedelta(days=29)) == 0
        assert await sender.prune(now + timedelta(days=31)) == 1
        assert await rows(store) == []
    finally:
        await sender.aclose()
    bodies = {r.body for r in receiver.received}
    assert len(receiver.received) == 4 and len(bodies) == 1  # the same bytes each time
    assert all(check_delivery(r)["id"] == change.id for r in receiver.received)


async def test_an_unreachable_receiver_keeps_the_row_pending(store: db.Store) -> None:
    cfg = config("http://127.0.0.1:9/unreachable")
    router = rerouter(store, cfg)
    await put_return(store, "5007", label_status="in_transit")
    await router.reroute([EMAIL], cause="refresh", now=T0)
    await put_return(store, "5007", label_status="in_transit", state="expired")
    assert await router.reroute([EMAIL], cause="webhook", now=T0) is not None
    sender = Sender(store, cfg.events, rng=Random(1))
    try:
        assert (await sender.deliver_due(T0)).failed == 1
    finally:
        await sender.aclose()
    (row,) = await rows(store)
    assert row.status == "pending" and row.last_error and "no answer" in row.last_error
    assert SECRET not in row.last_error
    sender = Sender(store, cfg.events)
    assert await sender.prune(T0 + timedelta(days=365)) == 0  # pending: never forgotten
    assert len(await rows(store)) == 1


# --- signatures and settings --------------------------------------------------------------


def test_signature_is_hmac_sha256_hex_over_the_raw_body() -> None:
    import hashlib
    import hmac

    body = b'{"id":"1","type":"routing.changed"}'
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert sign(body, SECRET) == f"sha256={expected}"
    assert verify(body, f"sha256={expected}", SECRET)
    assert not verify(body + b" ", f"sha256={expected}", SECRET)
    assert not verify(body, None, SECRET)


def test_settings_of_routing_events() -> None:
    settings = Settings(
        routing_webhook_urls="https://a.example/hook, https://b.example/hook,https://a.example/hook",
        routing_webhook_secret="s3cret",
        routing_scan_interval_s=60,
    )
    events = EventsConfig.from_settings(settings)
    assert events.urls == ("https://a.example/hook", "https://b.example/hook")
    assert events.scan_interval_s == 60
    assert "s3cret" not in repr(events) and "s3cret" not in repr(settings)
    listed = Settings(routing_webhook_urls=["https://a.example/x", "http://b.example/y"])
    assert listed.routing_webhook_urls == ("https://a.example/x", "http://b.example/y")
    with pytest.raises(ValidationError, match="not an http"):
        Settings(routing_webhook_urls="ftp://a.example/hook")
    with pytest.raises(ValidationError, match="not an http"):
        Settings(routing_webhook_urls="https:///no-host")
    # Sandbox mode without a secret: the public sandbox default signs.
    assert EventsConfig.from_settings(Settings(routing_webhook_urls="https://a.example/"))
    # A real Loop token and URLs without a secret: refused at start-up.
    real = Settings(loop_api_token="loop-token", routing_webhook_urls="https://a.example/")
    with pytest.raises(ConfigError, match="LOOPDESK_ROUTING_WEBHOOK_SECRET"):
        RoutingConfig.from_settings(real)
    from loopdesk.api.app import create_app

    with pytest.raises(ConfigError, match="LOOPDESK_ROUTING_WEBHOOK_SECRET"):
        create_app(real)
    # No URLs: nothing to sign, nothing refused.
    assert RoutingConfig.from_settings(Settings(loop_api_token="loop-token")).events.urls == ()


def test_serve_refuses_to_start_with_urls_and_no_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from typer.testing import CliRunner

    from loopdesk.cli.main import app

    monkeypatch.chdir(tmp_path)
    env = {
        "LOOPDESK_LOOP_API_TOKEN": "loop-token",
        "LOOPDESK_ROUTING_WEBHOOK_URLS": "https://help.example/hooks",
        "LOOPDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db",
    }
    result = CliRunner().invoke(app, ["serve", "--port", "1"], env=env)
    assert result.exit_code == 1
    assert "LOOPDESK_ROUTING_WEBHOOK_SECRET" in result.output


def test_routing_scan_command_writes_and_sends_the_change(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    receiver: Receiver,  # noqa: F811
) -> None:
    from typer.testing import CliRunner

    from loopdesk.cli.main import app

    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"

    async def seed() -> None:
        store = await db.Store.open(url)
        try:
            await put_return(store, "5008", label_days_ago=6)
        finally:
            await store.close()

    asyncio.run(seed())
    monkeypatch.chdir(tmp_path)
    env = {
        "LOOPDESK_DATABASE_URL": url,
        "LOOPDESK_ROUTING_WEBHOOK_URLS": receiver.url,
        "LOOPDESK_ROUTING_WEBHOOK_SECRET": SECRET,
    }
    runner = CliRunner()
    first = runner.invoke(app, ["routing", "scan", "--at", T0.isoformat(), "--json"], env=env)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["changed"] == 0  # the baseline
    later = (T0 + timedelta(days=1)).isoformat()
    second = runner.invoke(app, ["routing", "scan", "--at", later, "--json"], env=env)
    assert second.exit_code == 0, second.output
    report = json.loads(second.stdout)
    assert report["changed"] == 1 and report["sent"] == 1 and report["failed"] == 0
    (event,) = report["events"]
    assert event["new"]["rule"] == "refund-waiting-a-week"
    assert len(receiver.received) == 1
    assert check_delivery(receiver.received[0])["id"] == event["id"]
    again = runner.invoke(app, ["routing", "scan", "--at", later, "--json"], env=env)
    assert json.loads(again.stdout)["changed"] == 0 and len(receiver.received) == 1
    bad = runner.invoke(app, ["routing", "scan", "--at", "next tuesday"], env=env)
    assert bad.exit_code == 2 and "--at" in bad.output
