"""loopdesk.store on SQLite and PostgreSQL.

PostgreSQL runs in a throwaway database created for this run (dropped at the end);
when no server answers at 127.0.0.1:5432 those cases are skipped, saying so.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, inspect, select, text
from sqlalchemy.dialects.sqlite.aiosqlite import dialect as sqlite_dialect

from loopdesk import store as db
from loopdesk.domain.models import LoopReturn, Note, Order, Shipment
from loopdesk.domain.normalize import normalize_return
from loopdesk.errors import InvalidInput
from loopdesk.store.migrate import alembic_config
from loopdesk.store.schema import api_keys, metadata, webhook_events
from loopdesk.store.types import UTCDateTime

PG_HOST = "127.0.0.1:5432"
PG_ADMIN_DSN = f"postgresql://postgres@{PG_HOST}/test"
PG_SKIP = f"PostgreSQL not reachable at {PG_HOST}: PostgreSQL storage tests skipped"
TABLES = [
    "returns",
    "notes",
    "customer_fetches",
    "webhook_events",
    "audit_log",
    "api_keys",
    "checkpoints",
    "idempotency_keys",
    "drafts",
]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


# --- fixtures --------------------------------------------------------------------------


class PgServer:
    """Creates uniquely named databases on the test server and drops them at the end."""

    def __init__(self) -> None:
        self.created: list[str] = []
        self.reachable = True
        self.main_url = ""

    async def create_database(self) -> str:
        name = f"loopdesk_test_{secrets.token_hex(6)}"
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        self.created.append(name)
        return f"postgresql+asyncpg://postgres@{PG_HOST}/{name}"

    async def drop_all(self) -> None:
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
        try:
            for name in self.created:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = PgServer()
    try:
        server.main_url = asyncio.run(server.create_database())
    except (OSError, asyncpg.PostgresError, TimeoutError):
        server.reachable = False
    yield server
    if server.created:
        asyncio.run(server.drop_all())


def _require_pg(server: PgServer) -> PgServer:
    if not server.reachable:
        pytest.skip(PG_SKIP)
    return server


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, pg_server: PgServer
) -> AsyncIterator[db.Store]:
    if request.param == "sqlite":
        opened = await db.Store.open(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    else:
        opened = await db.Store.open(_require_pg(pg_server).main_url)
        # One database serves the whole run: each test starts from empty tables.
        async with opened.session() as session:
            await session.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY"))
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_url(request: pytest.FixtureRequest, tmp_path: Path, pg_server: PgServer) -> str:
    """The URL of a database with nothing in it."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    return await _require_pg(pg_server).create_database()


# --- builders --------------------------------------------------------------------------


def raw_return(
    return_id: str = "1001",
    *,
    email: str = "ann@example.com",
    updated: datetime = T0,
    state: str = "open",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": return_id,
        "state": state,
        "created_at": (T0 - timedelta(days=30)).isoformat(),
        "updated_at": updated.isoformat(),
        "customer": email,
        "order_name": f"#{return_id}",
        "return_total": "19.99",
        "carrier": "UPS",
        "tracking_number": "1Z1",
        "label_status": "new",
        "label_updated_at": updated.isoformat(),
        **extra,
    }


def item(raw: dict[str, Any]) -> tuple[dict[str, Any], LoopReturn]:
    return raw, normalize_return(raw)


def note(note_id: str, return_id: str, content: str) -> Note:
    return Note(id=note_id, returnId=return_id, content=content, createdAt=None)


# --- migrations and engine -------------------------------------------------------------


def _schema_drift(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection)
    return list(compare_metadata(context, metadata))


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_migrations_create_the_schema_and_are_idempotent(
    empty_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the scripts are found from the package, not the cwd
    opened = await db.Store.open(empty_url)
    try:
        async with opened.engine.connect() as connection:
            assert set(TABLES) <= await connection.run_sync(_table_names)
            version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
            assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()
            # The migration and the metadata the queries use describe the same schema.
            assert await connection.run_sync(_schema_drift) == []
        assert await opened.ping()
    finally:
        await opened.close()
    await db.upgrade(empty_url)  # again: nothing to do, nothing raised
    again = await db.Store.open(empty_url)
    async with again.engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    await again.close()


async def test_store_open_without_migrate_leaves_the_database_alone(tmp_path: Path) -> None:
    opened = await db.Store.open(f"sqlite:///{tmp_path / 'bare.db'}", migrate=False)
    async with opened.engine.connect() as connection:
        assert await connection.run_sync(_table_names) == set()
    await opened.close()


async def test_a_failed_session_rolls_back(store: db.Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.session() as session:
            await db.upsert_returns(session, [item(raw_return())])
            raise RuntimeError("boom")
    async with store.session() as session:
        assert await db.get_return(session, "1001") is None


async def test_two_stores_share_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    first, second = await asyncio.gather(db.Store.open(url), db.Store.open(url))

    async def write(opened: db.Store, prefix: str) -> None:
        for n in range(10):
            async with opened.session() as session:
                await db.record_event(
                    session,
                    dedupe_key=f"{prefix}-{n}",
                    topic="return",
                    trigger="return.updated",
                    return_id=None,
                    body=b"{}",
                )

    try:
        await asyncio.gather(write(first, "a"), write(second, "b"))
        async with first.session() as session:
            assert await session.scalar(text("PRAGMA journal_mode")) == "wal"
            assert (await db.event_counts(session))["received"] == 20
    finally:
        await first.close()
        await second.close()


def test_naive_datetimes_are_refused_and_sqlite_values_come_back_aware() -> None:
    column = UTCDateTime()
    sqlite = sqlite_dialect()
    with pytest.raises(ValueError):
        column.process_bind_param(datetime(2026, 1, 1), sqlite)
    stored = column.process_bind_param(T0.astimezone(), sqlite)
    assert stored == T0.replace(tzinfo=None)
    back = column.process_result_value(stored, sqlite)
    assert back == T0 and back is not None and back.tzinfo is UTC


def test_unsupported_database_url_is_a_config_error() -> None:
    from loopdesk.errors import ConfigError
    from loopdesk.store.engine import async_url

    with pytest.raises(ConfigError):
        async_url("mysql://x@localhost/db")
    assert async_url("postgresql://u@h/d").drivername == "postgresql+asyncpg"


# --- returns and notes -----------------------------------------------------------------


async def test_upsert_newer_wins(store: db.Store) -> None:
    async with store.session() as session:
        assert await db.upsert_returns(session, [item(raw_return(state="open"))]) == 1
        older = raw_return(state="closed", updated=T0 - timedelta(hours=1))
        assert await db.upsert_returns(session, [item(older)]) == 0
        stored = await db.get_return(session, "1001")
        assert stored is not None and stored[1].state == "open"
        assert stored[0]["state"] == "open"

        # Equal timestamps overwrite: Loop does not always move updated_at.
        assert await db.upsert_returns(session, [item(raw_return(state="reviewed"))]) == 1
        stored = await db.get_return(session, "1001")
        assert stored is not None and stored[1].state == "reviewed"

        # One batch holding two copies of a return keeps the newer one.
        newer = raw_return(state="closed", updated=T0 + timedelta(hours=1))
        batch = [item(newer), item(raw_return(state="open")), item(raw_return("1002"))]
        assert await db.upsert_returns(session, batch) == 2
        stored = await db.get_return(session, "1001")
        assert stored is not None and stored[1].state == "closed"
        assert stored[1].updated == T0 + timedelta(hours=1)
        assert await db.upsert_returns(session, []) == 0


async def test_returns_for_emails_ignores_case_and_attaches_notes(store: db.Store) -> None:
    async with store.session() as session:
        await db.upsert_returns(
            session,
            [
                item(raw_return("1", email="Ann@Example.com", updated=T0)),
                item(raw_return("2", email="ann@example.com", updated=T0 + timedelta(days=1))),
                item(raw_return("3", email="BOB@example.com", updated=T0 + timedelta(days=2))),
                item(raw_return("4", email="ann@example.com", updated=T0 - timedelta(days=400))),
                item(raw_return("5", email="carol@example.com", updated=T0)),
            ],
        )
        await db.replace_notes(session, "1", [note("9", "1", "second"), note("3", "1", "first")])
        await db.replace_notes(
            session, "1", [note("7", "1", "b"), note("8", "1", "a"), note("7", "1", "dup")]
        )

    async with store.session() as session:
        since = T0 - timedelta(days=365)
        found = await db.returns_for_emails(
            session, ["ANN@example.COM", " bob@EXAMPLE.com "], since=since
        )
        assert [r.id for r in found] == ["3", "2", "1"]
        by_id = {r.id: r for r in found}
        assert [(n.id, n.content) for n in by_id["1"].notes] == [("7", "b"), ("8", "a")]
        assert by_id["2"].notes == []

        limited = await db.returns_for_emails(
            session, ["ann@example.com", "bob@example.com"], since=since, limit_per_email=1
        )
        assert [r.id for r in limited] == ["3", "2"]
        assert await db.returns_for_emails(session, [], since=since) == []

        raw, view = await db.get_return(session, "1") or ({}, None)
        assert raw["customer"] == "Ann@Example.com" and view is not None
        assert len(view.notes) == 2

        await db.replace_notes(session, "1", [])
        assert (await db.get_return(session, "1") or ({}, view))[1].notes == []


async def test_notes_of_several_returns_replaced_at_once(store: db.Store) -> None:
    async with store.session() as session:
        await db.upsert_returns(session, [item(raw_return(i, updated=T0)) for i in "123"])
        await db.replace_notes(session, "3", [note("5", "3", "kept")])
        await db.replace_notes_many(
            session,
            {"1": ([note("9", "1", "old")], None), "2": ([note("4", "2", "gone")], None)},
        )
        await db.replace_notes_many(
            session,
            {
                "1": ([note("7", "1", "b"), note("8", "1", "a"), note("7", "1", "dup")], None),
                "2": ([], None),
            },
        )
        await db.replace_notes_many(session, {})
    async with store.session() as session:
        stored = [await db.get_return(session, i) for i in "123"]
    notes = [found[1].notes if found else None for found in stored]
    assert notes[0] is not None
    assert [(n.id, n.content) for n in notes[0]] == [("7", "b"), ("8", "a")]
    assert notes[1] == []
    assert notes[2] is not None and [n.content for n in notes[2]] == ["kept"]


async def test_a_webhook_write_keeps_its_version_and_never_moves_back(store: db.Store) -> None:
    raw = raw_return(updated=T0 + timedelta(hours=2))
    async with store.session() as session:
        await db.lock_return(session, "1001")
        assert await db.stored_return(session, "1001") is None
        raw_, view = item(raw)
        assert await db.write_return(
            session, raw_, view, version_source="edited_at", version_rank=2
        )
        stored = await db.stored_return(session, "1001")
        assert stored is not None and stored.updated_at == T0 + timedelta(hours=2)
        assert (stored.version_source, stored.version_rank) == ("edited_at", 2)
        # An older copy is not written, whoever asks.
        older_raw, older = item(raw_return(updated=T0, state="closed"))
        assert not await db.write_return(
            session, older_raw, older, version_source=None, version_rank=0
        )
        assert await db.upsert_returns(session, [(older_raw, older)]) == 0
        # A read from Loop as new as the stored copy replaces it, and is exact again.
        same_raw, same = item(raw_return(updated=T0 + timedelta(hours=2), state="closed"))
        assert await db.upsert_returns(session, [(same_raw, same)]) == 1
        again = await db.stored_return(session, "1001")
        assert again is not None and again.normalized["state"] == "closed"
        assert (again.version_source, again.version_rank) == (None, 0)


# --- freshness -------------------------------------------------------------------------


async def test_freshness_is_the_oldest_fetch_of_the_set(store: db.Store) -> None:
    orders = [
        Order(
            id="#1",
            name="#1",
            shipments=[Shipment(carrierDisplayName="UPS", status="delivered", trackingCode="1Z")],
            shipmentUrl="https://app.wonderment.com/shipments?order_name=%231",
        )
    ]
    async with store.session() as session:
        assert await db.fetched_at(session, ["a@x.com"]) is None
        await db.mark_fetched(session, ["A@x.com", "b@x.com"], T0, orders)
        await db.mark_fetched(session, ["b@x.com"], T0 + timedelta(minutes=5), [])

    async with store.session() as session:
        assert await db.fetched_at(session, ["a@X.com", "B@x.com"]) == T0
        assert await db.fetched_at(session, ["b@x.com"]) == T0 + timedelta(minutes=5)
        assert await db.fetched_at(session, ["a@x.com", "c@x.com"]) is None
        assert await db.fetched_at(session, []) is None
        assert await db.stored_orders(session, ["a@x.com", "b@x.com"]) == orders
        assert await db.stored_orders(session, ["b@x.com"]) == []
        assert await db.stored_orders(session, ["c@x.com"]) == []

        # A lookup that finishes late does not move freshness back.
        await db.mark_fetched(session, ["a@x.com"], T0 - timedelta(hours=1), [])
        assert await db.fetched_at(session, ["a@x.com"]) == T0
        assert await db.stored_orders(session, ["a@x.com"]) == orders


# --- webhooks --------------------------------------------------------------------------


async def _record(session: Any, key: str, body: bytes = b'{"topic":"return"}') -> tuple[int, bool]:
    result: tuple[int, bool] = await db.record_event(
        session, dedupe_key=key, topic="return", trigger="return.created", return_id="1", body=body
    )
    return result


async def test_webhook_events_are_deduplicated(store: db.Store) -> None:
    results = []
    for _ in range(5):
        async with store.session() as session:
            results.append(await _record(session, "same"))
    assert results[0][1] is True
    assert all(not new for _, new in results[1:])
    assert {event_id for event_id, _ in results} == {results[0][0]}
    async with store.session() as session:
        assert await session.scalar(select(func.count()).select_from(webhook_events)) == 1
        (other, new) = await _record(session, "other")
        assert new and other != results[0][0]


async def test_failed_events_are_listed_for_replay(store: db.Store) -> None:
    async with store.session() as session:
        first, _ = await _record(session, "k1", b"\x00binary")
        second, _ = await _record(session, "k2")
        third, _ = await _record(session, "k3")
        await db.mark_event(session, first, "failed", "Loop said no")
        await db.mark_event(session, second, "failed", "timeout")
        await db.mark_event(session, third, "ignored")
        with pytest.raises(ValueError):
            await db.mark_event(session, third, "duplicate")

    async with store.session() as session:
        failed = await db.failed_events(session)
        assert [(e.id, e.error, e.body) for e in failed] == [
            (first, "Loop said no", b"\x00binary"),
            (second, "timeout", b'{"topic":"return"}'),
        ]
        assert failed[0].status == "failed" and failed[0].topic == "return"
        assert len(await db.failed_events(session, limit=1)) == 1

        await db.mark_event(session, second, "applied")
        assert [e.id for e in await db.failed_events(session)] == [first]
        assert await db.event_counts(session) == {
            "received": 0,
            "applied": 1,
            "unchanged": 0,
            "stale": 0,
            "failed": 1,
            "ignored": 1,
        }
        row = (
            await session.execute(
                select(webhook_events.c.error, webhook_events.c.applied_at).where(
                    webhook_events.c.id == second
                )
            )
        ).one()
        assert row.error is None and row.applied_at is not None and row.applied_at.tzinfo


# --- audit -----------------------------------------------------------------------------


async def test_audit_log_idempotency_filters_and_pages(store: db.Store) -> None:
    async with store.session() as session:
        ids = [
            await db.record_audit(
                session,
                key_name="alice" if n % 2 else "bob",
                action="add_note" if n % 3 else "cancel_return",
                inputs={"n": n},
                result={"ok": True},
                ok=n != 4,
            )
            for n in range(7)
        ]
        keyed = await db.record_audit(
            session,
            key_name="alice",
            action="add_note",
            inputs={"note": "hi"},
            result={"id": "55"},
            ok=True,
            idempotency_key="req-1",
        )
        again = await db.record_audit(
            session,
            key_name="alice",
            action="add_note",
            inputs={"note": "hi"},
            result={"id": "56"},
            ok=True,
            idempotency_key="req-1",
        )
        bobs = await db.record_audit(
            session,
            key_name="bob",
            action="add_note",
            inputs={},
            result=None,
            ok=False,
            idempotency_key="req-1",
        )
    # The key is kept for the trail; deduplication is `idempotency_keys`' job.
    assert len({keyed, again, bobs}) == 3

    async with store.session() as session:
        found = await db.get_audit(session, keyed)
        assert found is not None and found.idempotency_key == "req-1"
        assert found.result == {"id": "55"} and found.inputs == {"note": "hi"}
        assert found.ok is True and found.at.tzinfo is not None
        assert await db.get_audit(session, max(ids) + 100) is None

        everything = await db.list_audit(session)
        assert [row.id for row in everything] == sorted([*ids, keyed, again, bobs], reverse=True)
        cancels = await db.list_audit(session, action="cancel_return")
        assert {row.inputs["n"] for row in cancels} == {0, 3, 6}
        alices = await db.list_audit(session, key_name="alice", action="add_note")
        assert [row.id for row in alices] == [again, keyed, ids[5], ids[1]]
        assert [row.ok for row in await db.list_audit(session, action="add_note")].count(False) == 2

        page1 = await db.list_audit(session, limit=4)
        page2 = await db.list_audit(session, limit=4, before_id=page1[-1].id)
        page3 = await db.list_audit(session, limit=4, before_id=page2[-1].id)
        assert [r.id for r in page1 + page2 + page3] == [r.id for r in everything]
        assert len(page3) == 2

        now = datetime.now(UTC)
        assert len(await db.list_audit(session, since=now - timedelta(minutes=5))) == 10
        assert await db.list_audit(session, since=now + timedelta(minutes=5)) == []
        assert await db.list_audit(session, until=now - timedelta(minutes=5)) == []


# --- checkpoints -----------------------------------------------------------------------


async def test_checkpoints_save_replace_and_clear(store: db.Store) -> None:
    async with store.session() as session:
        assert await db.get_checkpoint(session, "backfill") is None
        await db.save_checkpoint(session, "backfill", {"window": "w1", "cursor": None})
        await db.save_checkpoint(session, "backfill", {"window": "w2", "cursor": "c"})
        await db.save_checkpoint(session, "other", {"n": 1})
    async with store.session() as session:
        assert await db.get_checkpoint(session, "backfill") == {"window": "w2", "cursor": "c"}
        await db.save_checkpoint(session, "backfill", None)
        assert await db.get_checkpoint(session, "backfill") is None
        assert await db.get_checkpoint(session, "other") == {"n": 1}


# --- API keys --------------------------------------------------------------------------


async def test_api_keys_store_only_a_hash(store: db.Store) -> None:
    async with store.session() as session:
        key = await db.create_api_key(session, "support-bot")
        other = await db.create_api_key(session, "ops")
    assert key.startswith("ld_") and len(key) > 40 and key != other

    async with store.session() as session:
        assert await db.verify_api_key(session, key) == "support-bot"
        assert await db.verify_api_key(session, other) == "ops"
        assert await db.verify_api_key(session, key[:-1] + ("A" if key[-1] != "A" else "B")) is None
        assert await db.verify_api_key(session, "") is None
        assert await db.verify_api_key(session, "Bearer nonsense") is None
        with pytest.raises(InvalidInput):
            await db.create_api_key(session, "support-bot")
        with pytest.raises(InvalidInput):
            await db.create_api_key(session, "  ")

        rows = (await session.execute(select(api_keys))).all()
        assert rows and all(key not in repr(tuple(row)) for row in rows)
        assert all(other not in repr(tuple(row)) for row in rows)
        listed = await db.list_api_keys(session)
        assert [(k.name, k.prefix, k.active) for k in listed] == [
            ("ops", other[:8], True),
            ("support-bot", key[:8], True),
        ]

    async with store.session() as session:
        assert await db.revoke_api_key(session, "support-bot") is True
        assert await db.revoke_api_key(session, "support-bot") is False
        assert await db.revoke_api_key(session, "nobody") is False
        assert await db.verify_api_key(session, key) is None

        # A revoked name can be given a new key; the old key stays dead.
        renewed = await db.create_api_key(session, "support-bot")
        assert await db.verify_api_key(session, renewed) == "support-bot"
        assert await db.verify_api_key(session, key) is None
        assert all(k.active for k in await db.list_api_keys(session))


# --- writes committed together (store/group_commit.py) ----------------------------------


def _decision(n: int) -> Any:
    async def write(session: Any) -> int:
        return await db.record_decision(
            session,
            at=T0,
            emails=[f"c{n}@example.com"],
            channel="chat",
            intent="",
            facts={"n": n},
            queue=f"q{n}",
            priority=n,
            tags=[],
            rule="default",
        )

    return write


async def _decisions(store: db.Store) -> dict[int, str]:
    async with store.reader() as session:
        rows = await db.list_decisions(session, limit=500)
    return {row.id: row.queue for row in rows}


async def test_concurrent_writes_share_transactions(store: db.Store) -> None:
    ids = await asyncio.gather(*(store.together(_decision(n)) for n in range(60)))
    assert len(set(ids)) == 60
    assert store._together.transactions <= 3  # 60 writes: the first alone, the rest batched
    stored = await _decisions(store)
    assert {stored[i] for i in ids} == {f"q{n}" for n in range(60)}
    assert [stored[i] for i in ids] == [f"q{n}" for n in range(60)]  # each its own id


async def test_one_failing_write_fails_only_its_caller(store: db.Store) -> None:
    async def broken(session: Any) -> int:
        await session.execute(text("SELECT * FROM no_such_table"))
        return 0

    before = set(await _decisions(store))  # one PostgreSQL database serves the run
    writes = [_decision(n) for n in range(10)]
    writes.insert(5, broken)
    first = asyncio.create_task(store.together(_decision(99)))  # holds the writer first
    results = await asyncio.gather(*(store.together(w) for w in writes), return_exceptions=True)
    await first
    failed = [r for r in results if isinstance(r, Exception)]
    assert len(failed) == 1 and results.index(failed[0]) == 5
    stored = set(await _decisions(store)) - before
    assert stored == {r for r in results if isinstance(r, int)} | {first.result()}


def test_writes_together_from_successive_event_loops(tmp_path: Path) -> None:
    """A store opened once serves event loops one after another (the CLI, tests)."""
    opened = asyncio.run(db.Store.open(f"sqlite+aiosqlite:///{tmp_path / 'loops.db'}"))

    async def two() -> list[int]:
        ids = await asyncio.gather(opened.together(_decision(1)), opened.together(_decision(2)))
        await opened.writes_settled()
        return list(ids)

    try:
        assert len(set(asyncio.run(two()) + asyncio.run(two()))) == 4
    finally:
        asyncio.run(opened.close())
