"""The routing decisions table on both databases: record, page, filter, count."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from loopdesk import store as db

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1/test"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[db.Store]:
    if request.param == "sqlite":
        opened = await db.Store.open(f"sqlite+aiosqlite:///{tmp_path / 'routing.db'}")
        try:
            yield opened
        finally:
            await opened.close()
        return
    name = f"loopdesk_routing_{secrets.token_hex(6)}"
    try:
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        opened = await db.Store.open(f"postgresql+asyncpg://postgres@127.0.0.1/{name}")
        try:
            yield opened
        finally:
            await opened.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def record(store: db.Store, at: datetime, queue: str, rule: str, email: str) -> int:
    async with store.session() as session:
        return await db.record_decision(
            session,
            at=at,
            emails=[email, email.upper()],
            channel="chat",
            intent="",
            facts={"refund_pending_days": 9, "vip": False, "latest_return_state": "open"},
            queue=queue,
            priority=50,
            tags=["a", "b"],
            rule=rule,
        )


async def test_decisions_round_trip_page_and_filter(store: db.Store) -> None:
    plan = [
        ("returns", "open-return", "Ann@Example.com "),
        ("orders", "shipment-problem", "bo@example.com"),
        ("returns", "open-return", "cy@example.com"),
        ("general", "everything-else", "di@example.com"),
    ]
    ids = [
        await record(store, T0 + timedelta(minutes=i), q, r, e) for i, (q, r, e) in enumerate(plan)
    ]
    assert ids == sorted(ids)
    async with store.reader() as session:
        rows = await db.list_decisions(session)
        assert [r.id for r in rows] == ids[::-1]
        first = rows[-1]
        assert first.customer_emails == ["ann@example.com"]  # normalized, de-duplicated
        assert first.facts == {
            "refund_pending_days": 9,
            "vip": False,
            "latest_return_state": "open",
        }
        assert (first.tags, first.priority, first.at) == (["a", "b"], 50, T0)
        assert [r.rule for r in await db.list_decisions(session, queue="returns")] == [
            "open-return",
            "open-return",
        ]
        assert len(await db.list_decisions(session, rule="shipment-problem")) == 1
        window = await db.list_decisions(
            session, since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3)
        )
        assert [r.id for r in window] == [ids[2], ids[1]]
        page = await db.list_decisions(session, limit=2)
        rest = await db.list_decisions(session, limit=2, before_id=page[-1].id)
        assert [r.id for r in page + rest] == ids[::-1]

        counts = await db.decision_counts(session)
        assert counts == [
            ("returns", "open-return", 2),
            ("general", "everything-else", 1),
            ("orders", "shipment-problem", 1),
        ]
        assert await db.decision_counts(session, since=T0 + timedelta(minutes=2)) == [
            ("general", "everything-else", 1),
            ("returns", "open-return", 1),
        ]
