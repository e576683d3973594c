"""Return-window exceptions: the decision, the ledger (SQLite and PostgreSQL), the desk
that grants through Loop's allowlist (the sandbox), and the API and CLI over the ledger."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from loopdesk import store as db
from loopdesk.actions.run import ActionRunner
from loopdesk.actions.verify import VerifyPolicy
from loopdesk.api.app import create_app
from loopdesk.cli.main import app as cli_app
from loopdesk.customers.order_details import OrderTrackingNotConfigured
from loopdesk.domain.shipments import TrackedItem
from loopdesk.errors import InvalidInput
from loopdesk.policy.exceptions import CRITERIA, exception_decision, is_final_sale
from loopdesk.policy.file import Policy, parse_policy
from loopdesk.policy.grant import ExceptionDesk, ExceptionResult
from loopdesk.runtime import Upstream
from loopdesk.sandbox.app import create_sandbox_app
from loopdesk.sandbox.seed import EXCEPTION_PERSONAS, generate_world
from loopdesk.sandbox.world import World, iso
from loopdesk.settings import Settings

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = Policy()
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PG_SKIP = "PostgreSQL not reachable at 127.0.0.1:5432: PostgreSQL ledger tests skipped"
runner = CliRunner()


@dataclass(frozen=True)
class Grant:
    decided_at: datetime


def decide(
    delivered_days_ago: float | None,
    *,
    vip: bool = False,
    items: list[TrackedItem] | None = None,
    grants: list[Grant] | None = None,
    order_grant: Grant | None = None,
    policy: Policy = POLICY,
    delivery: Any = None,
) -> Any:
    delivered = None if delivered_days_ago is None else NOW - timedelta(days=delivered_days_ago)
    return exception_decision(
        order_name="#1086",
        delivered_at=delivered,
        now=NOW,
        vip=vip,
        order_items=items if items is not None else [TrackedItem("Linen Shirt", "M", "LS-1")],
        customer_grants=grants or [],
        order_grant=order_grant,
        policy=policy,
        delivery=delivery,
    )


# --- the decision ------------------------------------------------------------------


def test_within_the_window_needs_no_exception() -> None:
    decision = decide(10)
    assert decision.outcome == "within_window"
    assert [c.name for c in decision.criteria] == list(CRITERIA)
    assert decision.criterion("within_window").held
    assert decision.window_closed_on == (NOW - timedelta(days=10)).date() + timedelta(days=30)
    assert decision.reason == ""


@pytest.mark.parametrize(
    ("days", "vip", "outcome"),
    [
        (30, False, "within_window"),  # the window's last day
        (31, False, "eligible"),
        (37, False, "eligible"),  # the grace's last day
        (38, False, "refused"),
        (38, True, "eligible"),  # VIP: 14 days of grace
        (44, True, "eligible"),
        (45, True, "refused"),
    ],
)
def test_window_and_grace_boundaries(days: int, vip: bool, outcome: str) -> None:
    assert decide(days, vip=vip).outcome == outcome


def test_outside_the_grace_in_the_merchants_words() -> None:
    decision = decide(40)
    assert decision.outcome == "refused" and decision.rule == "outside_grace"
    assert decision.failed == ["within_window", "within_grace"]
    delivered = (NOW - timedelta(days=40)).date()
    assert f"delivered on {delivered}" in decision.reason
    assert str(decision.grace_ends_on) in decision.reason
    assert decision.grace_ends_on == delivered + timedelta(days=37)
    assert "7 days of grace ended on" in decision.criterion("within_grace").detail


def test_the_vip_grace_is_multiplied_and_said() -> None:
    decision = decide(40, vip=True)
    assert decision.outcome == "eligible" and decision.grace_days == 14
    assert "14 days of grace (VIP)" in decision.criterion("within_grace").detail


def test_one_exception_per_period() -> None:
    recent = decide(33, grants=[Grant(NOW - timedelta(days=100))])
    assert recent.outcome == "refused" and recent.rule == "already_used"
    assert "365 days" in recent.reason
    old = decide(33, grants=[Grant(NOW - timedelta(days=366))])
    assert old.outcome == "eligible"
    unlimited = parse_policy("[exceptions]\nonce_per_days = 0\n", Path("p.toml"))
    assert decide(33, grants=[Grant(NOW)], policy=unlimited).outcome == "eligible"


def test_final_sale_items() -> None:
    scarf = TrackedItem("Silk Scarf - FINAL SALE", "Floral", "SS-1")
    shirt = TrackedItem("Linen Shirt", "M", "LS-1")
    marked = TrackedItem("Tote", "Final sale", "ET-1")  # in the variant name
    only = decide(33, items=[scarf, marked])
    assert only.outcome == "refused" and only.rule == "final_sale"
    assert only.final_sale_items == [scarf, marked]
    assert "final sale" in only.reason
    mixed = decide(33, items=[scarf, shirt])
    assert mixed.outcome == "eligible" and mixed.final_sale_items == [scarf]
    assert mixed.criterion("not_all_final_sale").detail == "1 of 2 items are final sale"
    nothing = decide(33, items=[])
    assert nothing.outcome == "eligible"
    assert nothing.criterion("not_all_final_sale").detail == "Order Tracking lists no items"


def test_final_sale_by_sku_prefix() -> None:
    policy = parse_policy('[exceptions]\nfinal_sale_skus = ["FS-"]\n', Path("p.toml"))
    assert is_final_sale(TrackedItem("Shirt", "M", "fs-100"), policy)
    assert not is_final_sale(TrackedItem("Shirt", "M", "LS-FS-1"), policy)
    assert not is_final_sale(TrackedItem("Shirt", "M", ""), policy)


def test_unknown_and_undelivered() -> None:
    unknown = decide(None)
    assert unknown.outcome == "unknown" and unknown.rule == "unknown_delivery"
    assert unknown.window_closed_on is None and unknown.grace_ends_on is None
    assert not any(c.held for c in unknown.criteria[:3])
    assert "#1086" in unknown.reason
    moving = decide(None, delivery="undelivered")
    assert moving.outcome == "refused" and moving.rule == "not_delivered"
    assert "not been delivered" in moving.reason


def test_every_failing_rule_is_listed_and_the_first_gives_the_reason() -> None:
    decision = decide(
        60, items=[TrackedItem("A - final sale", "", "")], grants=[Grant(NOW - timedelta(days=1))]
    )
    assert decision.failed == [
        "within_window",
        "within_grace",
        "not_used_in_period",
        "not_all_final_sale",
    ]
    assert decision.rule == "outside_grace"


def test_already_granted_wins() -> None:
    decision = decide(60, order_grant=Grant(NOW - timedelta(days=2)))
    assert decision.outcome == "already_granted"
    assert decision.to_json()["outcome"] == "already_granted"


def test_merchant_words_with_placeholders() -> None:
    policy = parse_policy(
        "[shop]\nname = 'Tiny'\n[exceptions.words]\n"
        "outside_grace = '{shop}: {order} window {window_days}d, grace to {grace_ends_on}.'\n",
        Path("p.toml"),
    )
    decision = decide(40, policy=policy)
    assert decision.reason == f"Tiny: #1086 window 30d, grace to {decision.grace_ends_on}."


def test_decision_needs_an_aware_now() -> None:
    with pytest.raises(ValueError):
        exception_decision(
            order_name="#1",
            delivered_at=None,
            now=NOW.replace(tzinfo=None),
            vip=False,
            order_items=[],
            customer_grants=[],
            order_grant=None,
            policy=POLICY,
        )


# --- stores: SQLite and PostgreSQL --------------------------------------------------


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str | None]:
    name = f"loopdesk_exceptions_{secrets.token_hex(6)}"

    async def create() -> None:
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()

    async def drop() -> None:
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    try:
        asyncio.run(create())
    except (OSError, asyncpg.PostgresError, TimeoutError):
        yield None
        return
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    asyncio.run(drop())


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, pg_url: str | None
) -> AsyncIterator[db.Store]:
    if request.param == "sqlite":
        opened = await db.Store.open(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    else:
        if pg_url is None:
            pytest.skip(PG_SKIP)
        opened = await db.Store.open(pg_url)
        async with opened.session() as session:
            await session.execute(
                text("TRUNCATE exceptions, exception_emails, audit_log RESTART IDENTITY")
            )
    try:
        yield opened
    finally:
        await opened.close()


def _entry(**fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "decided_at": NOW,
        "emails": ["Ann@Example.com", "ann.alt@example.com"],
        "order_name": "#1086",
        "order_key": "1086",
        "outcome": "refused",
        "criteria": [{"name": "within_grace", "held": False, "detail": "ended"}],
        "reason": "too late",
        "details": {"graceEndsOn": "2026-11-20"},
        "vip": False,
        "delivered_at": NOW - timedelta(days=50),
        "key_name": "guide",
        "conversation_id": "c-1",
    }
    return {**values, **fields}


async def test_ledger_round_trip_filters_and_pages(store: db.Store) -> None:
    async with store.session() as session:
        first = await db.record_exception(session, **_entry())
        second = await db.record_exception(
            session,
            **_entry(order_name="#1120", order_key="1120", outcome="granted", emails=["bo@x.co"]),
            allowlist_id="3022801",
        )
        third = await db.record_exception(session, **_entry(outcome="unknown"))
    assert first is not None and second is not None and third is not None
    async with store.reader() as session:
        row = await db.get_exception(session, first)
        assert row is not None
        assert row.customer_emails == ["ann@example.com", "ann.alt@example.com"]
        assert row.criteria[0]["name"] == "within_grace" and row.reason == "too late"
        assert row.delivered_at == NOW - timedelta(days=50) and row.settled_at == NOW
        assert row.grant_key is None
        assert row.to_json()["orderName"] == "#1086"
        assert [r.id for r in await db.list_exceptions(session)] == [third, second, first]
        by_email = await db.list_exceptions(session, email=" ANN.alt@example.com")
        assert [r.id for r in by_email] == [third, first]
        assert [r.id for r in await db.list_exceptions(session, order_key="1120")] == [second]
        assert [r.id for r in await db.list_exceptions(session, outcome="unknown")] == [third]
        assert [r.id for r in await db.list_exceptions(session, limit=1, before_id=third)] == [
            second
        ]
        assert await db.count_granted(session, ["BO@x.co"]) == 1
        assert await db.count_granted(session, ["ann@example.com"]) == 0
        assert await db.count_granted(session, []) == 0
        assert await db.get_exception(session, 999) is None
    with pytest.raises(ValueError):
        async with store.session() as session:
            await db.record_exception(session, **_entry(outcome="maybe"))


async def test_the_grant_key_admits_one_grant_per_order(store: db.Store) -> None:
    async with store.session() as session:
        claimed = await db.record_exception(session, **_entry(outcome="pending"), grant_key="1086")
        again = await db.record_exception(session, **_entry(outcome="pending"), grant_key="1086")
        # Refusals carry no key: any number of them.
        refusals = [await db.record_exception(session, **_entry()) for _ in range(2)]
    assert claimed is not None and again is None and None not in refusals
    async with store.reader() as session:
        held = await db.grant_for_order(session, "1086")
        assert held is not None and held.id == claimed and held.settled_at is None
        assert [g.id for g in await db.customer_grants(session, ["ann@example.com"])] == [claimed]
    async with store.session() as session:
        await db.fail_grant(session, claimed, error={"code": "loop_error"}, at=NOW)
    async with store.reader() as session:
        assert await db.grant_for_order(session, "1086") is None  # released
        failed = await db.get_exception(session, claimed)
        assert failed is not None and failed.outcome == "failed"
        assert failed.details["upstreamError"] == {"code": "loop_error"}
        assert failed.details["graceEndsOn"] == "2026-11-20"
    async with store.session() as session:
        retry = await db.record_exception(session, **_entry(outcome="pending"), grant_key="1086")
        assert retry is not None
        await db.settle_grant(session, retry, allowlist_id="42", at=NOW)
    async with store.reader() as session:
        granted = await db.grant_for_order(session, "1086")
        assert granted is not None and (granted.outcome, granted.allowlist_id) == ("granted", "42")
        assert await db.count_granted(session, ["ann.alt@example.com"]) == 1
        since = NOW + timedelta(seconds=1)
        assert await db.customer_grants(session, ["ann@example.com"], since=since) == []


async def test_concurrent_claims_of_one_order(store: db.Store) -> None:
    async def claim() -> int | None:
        async with store.session() as session:
            await db.lock_exception_customer(session, ["ann@example.com"])
            return await db.record_exception(session, **_entry(outcome="pending"), grant_key="1086")

    results = await asyncio.gather(*(claim() for _ in range(5)))
    assert sum(r is not None for r in results) == 1


# --- the desk, against the sandbox --------------------------------------------------


def _order(
    name: str,
    email: str,
    delivered_days_ago: float | None,
    *,
    items: list[tuple[str, str]] | None = None,
    status: str = "DELIVERED",
) -> dict[str, Any]:
    delivered = None if delivered_days_ago is None else NOW - timedelta(days=delivered_days_ago)
    created = (delivered or NOW) - timedelta(days=4)
    order: dict[str, Any] = {
        "name": name,
        "customer_email": email,
        "zip": "43215",
        "created_at": iso(created),
        "shipments": [
            {
                "trackingCode": f"1Z{name.lstrip('#')}",
                "status": status,
                "carrierDisplayName": "UPS",
                "trackingUrl": None,
                "eta": None,
                "deliveredAt": iso(delivered) if delivered else None,
            }
        ],
    }
    if items is not None:
        order["line_items"] = [
            {"id": 900 + i, "title": t, "variant_title": v, "variant_id": 9000 + i}
            for i, (t, v) in enumerate(items)
        ]
    return order


def _world() -> World:
    return World(
        orders=[
            _order("#2001", "ann@example.com", 33, items=[("Linen Shirt", "M")]),
            _order("#2002", "ann@example.com", 34, items=[("Slim Chino", "32")]),
            _order("#2003", "bo@example.com", 60),
            _order("#2004", "cy@example.com", 33, items=[("Scarf - Final Sale", "Red")]),
            _order("#2005", "di@example.com", 10),
            _order("#2006", "ed@example.com", None, status="TRANSIT"),
            _order("#2007", "fay@example.com", 40, items=[("Beanie", "Rust")]),
        ]
    )


@dataclass
class Desk:
    desk: ExceptionDesk
    sandbox: Any
    store: db.Store

    @property
    def world(self) -> World:
        world: World = self.sandbox.state.world
        return world

    def entries(self, value: str) -> list[dict[str, Any]]:
        return [e for e in self.world.allowlist if e["type"] == "order" and e["value"] == value]

    def allowlist_posts(self) -> int:
        log = self.sandbox.state.faults.request_log
        return sum(1 for m, path, _q, _t in log if m == "POST" and path.endswith("/allowlists"))

    async def ask(self, order: str, emails: list[str], *, vip: bool = False) -> ExceptionResult:
        return await self.desk.request(
            emails=emails,
            vip=vip,
            order_name=order,
            conversation_id="conv-1",
            key_name="guide",
            now=NOW,
        )


@pytest.fixture
async def desk(store: db.Store) -> AsyncIterator[Desk]:
    settings = Settings(sandbox_rate_limit_per_minute=0)
    sandbox = create_sandbox_app(settings, world=_world())
    upstream = Upstream.from_settings(settings, sandbox=sandbox)
    actions = ActionRunner(store, upstream.returns, verify=VerifyPolicy(settle_s=0))
    desk = ExceptionDesk(store, upstream.tracking, actions, Policy(), poll_s=0.01)
    try:
        yield Desk(desk, sandbox, store)
    finally:
        await upstream.aclose()


async def test_an_eligible_exception_is_granted_once(desk: Desk) -> None:
    first = await desk.ask("2001", ["Ann@Example.com"])
    assert first.outcome == "eligible" and first.granted and not first.already_granted
    [entry] = desk.entries("#2001")
    assert first.allowlist_id == str(entry["id"])
    async with desk.store.reader() as session:
        row = await db.get_exception(session, first.entry_id or 0)
    assert row is not None
    assert (row.outcome, row.allowlist_id, row.grant_key) == ("granted", str(entry["id"]), "2001")
    assert row.customer_emails == ["ann@example.com"] and row.conversation_id == "conv-1"
    assert row.key_name == "guide" and row.settled_at is not None
    assert [c["name"] for c in row.criteria] == list(CRITERIA)
    assert row.details["items"] == [
        {"name": "Linen Shirt", "variant": "M", "sku": "SKU-9000", "quantity": 1}
    ]
    # The allowlist call is in the audit trail under the same key name.
    async with desk.store.reader() as session:
        [audit] = await db.list_audit(session, action="allowlist.add")
    assert audit.key_name == "guide" and audit.inputs == {"type": "order", "value": "#2001"}

    again = await desk.ask("#2001", ["ann@example.com"])
    assert again.outcome == "already_granted" and again.already_granted and again.granted
    assert again.allowlist_id == first.allowlist_id and again.grant_entry_id == first.entry_id
    assert again.entry_id != first.entry_id  # the second request is recorded too
    assert len(desk.entries("#2001")) == 1 and desk.allowlist_posts() == 1
    assert await desk.desk.granted_count(["ANN@example.com"]) == 1


async def test_a_second_order_within_the_period_is_refused(desk: Desk) -> None:
    assert (await desk.ask("#2001", ["ann@example.com"])).granted
    second = await desk.ask("#2002", ["ann@example.com", "ann.other@example.com"])
    assert second.outcome == "refused" and second.decision.rule == "already_used"
    assert second.decision.failed == ["within_window", "not_used_in_period"]
    assert desk.entries("#2002") == []
    async with desk.store.reader() as session:
        row = await db.get_exception(session, second.entry_id or 0)
    assert row is not None and row.outcome == "refused" and row.grant_key is None
    assert row.reason == second.decision.reason


@pytest.mark.parametrize(
    ("order", "email", "vip", "outcome", "rule"),
    [
        ("#2003", "bo@example.com", False, "refused", "outside_grace"),
        ("#2004", "cy@example.com", False, "refused", "final_sale"),
        ("#2005", "di@example.com", False, "within_window", ""),
        ("#2006", "ed@example.com", False, "refused", "not_delivered"),
        ("#2007", "fay@example.com", False, "refused", "outside_grace"),
        ("#9999", "gus@example.com", False, "unknown", "unknown_delivery"),
    ],
)
async def test_decisions_that_grant_nothing_are_recorded(
    desk: Desk, order: str, email: str, vip: bool, outcome: str, rule: str
) -> None:
    result = await desk.ask(order, [email], vip=vip)
    assert (result.outcome, result.decision.rule) == (outcome, rule)
    assert not result.granted and result.allowlist_id is None
    assert desk.allowlist_posts() == 0
    async with desk.store.reader() as session:
        [row] = await db.list_exceptions(session, email=email)
    assert row.outcome == outcome and row.reason == (result.decision.reason or None)
    assert row.details["orderFound"] is (order != "#9999")


async def test_a_vip_gets_the_longer_grace(desk: Desk) -> None:
    result = await desk.ask("#2007", ["fay@example.com"], vip=True)
    assert result.outcome == "eligible" and result.granted
    assert result.decision.grace_days == 14


async def test_a_refused_allowlist_releases_the_order(desk: Desk) -> None:
    desk.sandbox.state.faults.add("/allowlists", status=422, method="POST", times=1)
    failed = await desk.ask("#2001", ["ann@example.com"])
    assert failed.upstream_failed and not failed.granted and not failed.outcome_unknown
    assert failed.error is not None and failed.error["code"] == "loop_validation_error"
    async with desk.store.reader() as session:
        row = await db.get_exception(session, failed.entry_id or 0)
        assert row is not None and row.outcome == "failed" and row.grant_key is None
        assert row.details["upstreamError"]["code"] == "loop_validation_error"
        assert await db.count_granted(session, ["ann@example.com"]) == 0
    # A later try runs: the failure neither holds the order nor uses up the period.
    later = await desk.ask("#2001", ["ann@example.com"])
    assert later.granted and len(desk.entries("#2001")) == 1


async def test_an_unknown_allowlist_outcome_keeps_the_order_held(desk: Desk) -> None:
    desk.sandbox.state.faults.add("/allowlists", status=504, method="POST", times=1)
    unsure = await desk.ask("#2001", ["ann@example.com"])
    assert unsure.upstream_failed and unsure.outcome_unknown and unsure.pending
    async with desk.store.reader() as session:
        row = await db.get_exception(session, unsure.entry_id or 0)
    assert row is not None and row.outcome == "pending" and row.grant_key == "2001"
    assert row.details["outcomeUnknown"] is True
    # Nobody grants it again while Loop may hold the entry: a person checks.
    desk.desk.settle_wait_s = 0.05
    again = await desk.ask("#2001", ["ann@example.com"])
    assert again.already_granted and again.pending and not again.granted
    assert desk.allowlist_posts() == 1


async def test_two_requests_racing_for_one_order(desk: Desk) -> None:
    # Loop answers slowly, so the second request finds the first one's claim pending.
    desk.sandbox.state.faults.add("/allowlists", latency_ms=200, method="POST")
    results = await asyncio.gather(
        desk.ask("#2001", ["ann@example.com"]), desk.ask("2001", ["ann@example.com"])
    )
    assert desk.allowlist_posts() == 1 and len(desk.entries("#2001")) == 1
    assert all(r.granted for r in results)
    assert {r.allowlist_id for r in results} == {str(desk.entries("#2001")[0]["id"])}
    assert sorted(r.already_granted for r in results) == [False, True]
    assert len({r.grant_entry_id for r in results}) == 1
    async with desk.store.reader() as session:
        rows = await db.list_exceptions(session, order_key="2001")
    assert sorted(r.outcome for r in rows) == ["already_granted", "granted"]


async def test_racing_for_one_order_under_different_addresses(desk: Desk) -> None:
    # No customer lock is shared: the order's unique grant key alone decides.
    desk.sandbox.state.faults.add("/allowlists", latency_ms=100, method="POST")
    results = await asyncio.gather(
        *(desk.ask("#2001", [f"person{i}@example.com"]) for i in range(4))
    )
    assert desk.allowlist_posts() == 1
    assert all(r.granted for r in results)
    assert sum(not r.already_granted for r in results) == 1
    assert len({r.allowlist_id for r in results}) == 1


async def test_racing_requests_for_two_orders_of_one_customer(desk: Desk) -> None:
    desk.sandbox.state.faults.add("/allowlists", latency_ms=100, method="POST")
    results = await asyncio.gather(
        desk.ask("#2001", ["ann@example.com"]), desk.ask("#2002", ["ann@example.com"])
    )
    assert sorted(r.outcome for r in results) == ["eligible", "refused"]
    assert desk.allowlist_posts() == 1


async def test_a_request_needs_a_customer(desk: Desk) -> None:
    with pytest.raises(InvalidInput):
        await desk.ask("#2001", [" "])
    with pytest.raises(InvalidInput):
        await desk.ask("  ", ["ann@example.com"])
    async with desk.store.reader() as session:
        assert await db.list_exceptions(session) == []


async def test_a_cancelled_request_still_settles_its_claim(desk: Desk) -> None:
    desk.sandbox.state.faults.add("/allowlists", latency_ms=300, method="POST")
    task = asyncio.create_task(desk.ask("#2001", ["ann@example.com"]))
    for _ in range(200):  # until the claim is in the ledger
        await asyncio.sleep(0.01)
        async with desk.store.reader() as session:
            if await db.grant_for_order(session, "2001") is not None:
                break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(200):
        await asyncio.sleep(0.02)
        async with desk.store.reader() as session:
            held = await db.grant_for_order(session, "2001")
        if held is not None and held.outcome == "granted":
            break
    assert held is not None and held.outcome == "granted"
    assert held.allowlist_id == str(desk.entries("#2001")[0]["id"])


async def test_without_order_tracking_nothing_is_decided(store: db.Store) -> None:
    settings = Settings()
    upstream = Upstream.from_settings(settings)
    try:
        desk = ExceptionDesk(store, None, ActionRunner(store, upstream.returns), Policy())
        with pytest.raises(OrderTrackingNotConfigured):
            await desk.request(
                emails=["a@b.co"], vip=False, order_name="#1", conversation_id=None, key_name="k"
            )
    finally:
        await upstream.aclose()
    async with store.reader() as session:
        assert await db.list_exceptions(session) == []


async def test_the_seeded_personas(store: db.Store) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    settings = Settings(sandbox_rate_limit_per_minute=0)
    sandbox = create_sandbox_app(settings, world=generate_world(customers=2, now=today))
    upstream = Upstream.from_settings(settings, sandbox=sandbox)
    desk = ExceptionDesk(store, upstream.tracking, ActionRunner(store, upstream.returns), Policy())
    expected = {
        "#7001": ("eligible", "eligible"),
        "#7002": ("refused", "refused"),
        "#7003": ("refused", "refused"),
        "#7004": ("refused", "eligible"),
    }
    try:
        for persona in EXCEPTION_PERSONAS:
            plain, vip = expected[persona.order_name]
            for as_vip, want in ((False, plain), (True, vip)):
                order = await desk.request(
                    emails=[persona.email],
                    vip=as_vip,
                    order_name=persona.order_name,
                    conversation_id=None,
                    key_name="test",
                    now=today + timedelta(hours=12),
                )
                assert order.outcome in (want, "already_granted"), persona
    finally:
        await upstream.aclose()


# --- facts, API and CLI -------------------------------------------------------------

KEY = "test-api-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    settings = Settings(
        api_key=KEY,
        sandbox_rate_limit_per_minute=0,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/api.db",
    )
    app = create_app(
        settings,
        upstream=Upstream.from_settings(
            settings, sandbox=create_sandbox_app(settings, world=_world())
        ),
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield client, app


async def test_the_api_lists_and_shows_the_ledger(api: tuple[httpx.AsyncClient, Any]) -> None:
    client, app = api
    desk: ExceptionDesk = app.state.exceptions
    granted = await desk.request(
        emails=["ann@example.com"],
        vip=False,
        order_name="#2001",
        conversation_id="c",
        key_name="guide",
        now=NOW,
    )
    refused = await desk.request(
        emails=["bo@example.com"],
        vip=False,
        order_name="#2003",
        conversation_id=None,
        key_name="guide",
        now=NOW,
    )
    page = (await client.get("/v1/exceptions", headers=AUTH)).json()
    assert [i["id"] for i in page["items"]] == [refused.entry_id, granted.entry_id]
    assert page["nextBefore"] is None
    first = page["items"][1]
    assert first["outcome"] == "granted" and first["allowlistId"] == granted.allowlist_id
    assert first["emails"] == ["ann@example.com"] and first["orderName"] == "#2001"
    assert [c["name"] for c in first["criteria"]] == list(CRITERIA)
    for query, ids in (
        ({"email": "BO@example.com"}, [refused.entry_id]),
        ({"order": "2001"}, [granted.entry_id]),
        ({"order": "#2003"}, [refused.entry_id]),
        ({"outcome": "granted"}, [granted.entry_id]),
        ({"outcome": "pending"}, []),
        ({"limit": "1"}, [refused.entry_id]),
        ({"before": str(refused.entry_id)}, [granted.entry_id]),
    ):
        got = (await client.get("/v1/exceptions", params=query, headers=AUTH)).json()
        assert [i["id"] for i in got["items"]] == ids, query
    one = await client.get("/v1/exceptions", params={"limit": "1"}, headers=AUTH)
    assert one.json()["nextBefore"] == refused.entry_id

    shown = await client.get(f"/v1/exceptions/{refused.entry_id}", headers=AUTH)
    assert shown.status_code == 200
    assert shown.json()["reason"] == refused.decision.reason
    missing = await client.get("/v1/exceptions/424242", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert set(missing.json()["error"]) == {"code", "message", "details"}

    for path in ("/v1/exceptions", f"/v1/exceptions/{refused.entry_id}"):
        assert (await client.get(path)).status_code == 401
    for bad in (
        {"outcome": "maybe"},
        {"email": "not an email"},
        {"before": "0"},
        {"limit": "501"},
        {"order": "a\x00b"},
    ):
        response = await client.get("/v1/exceptions", params=bad, headers=AUTH)
        assert response.status_code == 422, bad
        assert response.json()["error"]["code"] == "invalid_input"
    assert (await client.get("/v1/exceptions/abc", headers=AUTH)).status_code == 422
    schema = (await client.get("/openapi.json")).json()
    assert {"/v1/exceptions", "/v1/exceptions/{entry_id}"} <= set(schema["paths"])


async def test_granted_exceptions_reach_the_facts(api: tuple[httpx.AsyncClient, Any]) -> None:
    client, app = api
    decide_body = {"customer": {"emails": ["ann@example.com"]}, "channel": "chat"}
    before = (await client.post("/v1/routing/decide", json=decide_body, headers=AUTH)).json()
    assert before["facts"]["exceptions_granted"] == 0
    desk: ExceptionDesk = app.state.exceptions
    await desk.request(
        emails=["ann@example.com"],
        vip=False,
        order_name="#2001",
        conversation_id=None,
        key_name="guide",
        now=NOW,
    )
    after = (await client.post("/v1/routing/decide", json=decide_body, headers=AUTH)).json()
    assert after["facts"]["exceptions_granted"] == 1
    lookup = await client.get(
        "/v1/customers/lookup",
        params={"email": "ann@example.com"},
        headers={**AUTH, "Cache-Control": "no-cache"},
    )
    assert lookup.json()["facts"]["exceptions_granted"] == 1
    other = await client.get(
        "/v1/customers/lookup", params={"email": "bo@example.com"}, headers=AUTH
    )
    assert other.json()["facts"]["exceptions_granted"] == 0
    # The store-only re-routing reads the ledger too.
    services = app.state.services
    async with services.store.reader() as session:
        stored = await services.rerouter._facts(session, ["ann@example.com"], NOW)
    assert stored["exceptions_granted"] == 1


@pytest.fixture
def cli_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    for name in ("LOOPDESK_LOOP_API_TOKEN", "LOOPDESK_SANDBOX_DATA", "LOOPDESK_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)

    async def fill() -> dict[str, int]:
        store = await db.Store.open("sqlite+aiosqlite:///./loopdesk.db")
        try:
            async with store.session() as session:
                refused = await db.record_exception(session, **_entry())
                granted = await db.record_exception(
                    session,
                    **_entry(order_name="#1120", order_key="1120", outcome="granted"),
                    allowlist_id="3022801",
                )
        finally:
            await store.close()
        assert refused is not None and granted is not None
        return {"refused": refused, "granted": granted}

    return asyncio.run(fill())


def test_cli_lists_and_shows(cli_ledger: dict[str, int]) -> None:
    listed = runner.invoke(cli_app, ["exceptions", "list", "--json"])
    assert listed.exit_code == 0, listed.stderr
    assert [e["id"] for e in json.loads(listed.stdout)] == [
        cli_ledger["granted"],
        cli_ledger["refused"],
    ]
    by_order = runner.invoke(cli_app, ["exceptions", "list", "--order", "1120", "--json"])
    assert [e["id"] for e in json.loads(by_order.stdout)] == [cli_ledger["granted"]]
    by_email = runner.invoke(
        cli_app, ["exceptions", "list", "--email", "ANN@example.com", "--json"]
    )
    assert len(json.loads(by_email.stdout)) == 2
    table = runner.invoke(cli_app, ["exceptions", "list"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "#1120" in table.stdout and "3022801" in table.stdout
    assert "within_grace" in table.stdout  # the criterion that failed

    shown = runner.invoke(cli_app, ["exceptions", "show", str(cli_ledger["refused"]), "--json"])
    assert shown.exit_code == 0
    assert json.loads(shown.stdout)["reason"] == "too late"
    readable = runner.invoke(
        cli_app, ["exceptions", "show", str(cli_ledger["refused"])], env={"COLUMNS": "200"}
    )
    assert readable.exit_code == 0
    assert "within_grace" in readable.stdout and "too late" in readable.stdout


def test_cli_refuses_unknown_ids_and_bad_filters(cli_ledger: dict[str, int]) -> None:
    missing = runner.invoke(cli_app, ["exceptions", "show", "4242"])
    assert missing.exit_code == 1 and missing.stdout == ""
    assert "no exceptions ledger entry 4242" in missing.stderr
    for args in (
        ["exceptions", "show", "abc"],
        ["exceptions", "show", "0"],
        ["exceptions", "list", "--email", "not an email"],
        ["exceptions", "list", "--outcome", "maybe"],
        ["exceptions", "list", "--order", "#"],
    ):
        result = runner.invoke(cli_app, args)
        assert result.exit_code == 2, args
        assert result.stdout == "" and "error" in result.stderr
    empty = runner.invoke(cli_app, ["exceptions", "list", "--order", "#5555"])
    assert empty.exit_code == 0 and "no exceptions recorded" in empty.stderr
