"""Returns and their notes: the raw Loop object beside the normalized view."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from loopdesk.domain.models import LoopReturn, Note
from loopdesk.store.dialect import built, dialect_name, insert, rowcount
from loopdesk.store.schema import notes, returns
from loopdesk.store.types import utcnow

# Rows per INSERT: far below SQLite's bound-parameter limit.
_BATCH = 200


def normalize_email(email: str) -> str:
    return email.strip().lower()


def normalize_emails(emails: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(normalize_email(e) for e in emails if e.strip()))


def _row(raw: dict[str, Any], view: LoopReturn, now: datetime) -> dict[str, Any]:
    return {
        "id": view.id,
        "customer_email": normalize_email(view.customerEmail),
        "updated_at": view.updated,
        "raw": raw,
        "normalized": view.to_json(include_notes=False),
        "stored_at": now,
        "version_source": None,
        "version_rank": None,
    }


_WRITTEN = (
    "customer_email",
    "updated_at",
    "raw",
    "normalized",
    "stored_at",
    "version_source",
    "version_rank",
)


async def upsert_returns(
    session: AsyncSession, items: list[tuple[dict[str, Any], LoopReturn]]
) -> int:
    """Store returns, newest `updatedAt` winning; the number of rows written.

    The comparison happens inside the INSERT, so a slow writer holding an older copy
    never overwrites a newer one another process stored meanwhile. Equal timestamps
    overwrite: Loop does not always move `updated_at` on small changes.
    """
    newest: dict[str, tuple[dict[str, Any], LoopReturn]] = {}
    for raw, view in items:  # one row per id: ON CONFLICT may not touch a row twice
        kept = newest.get(view.id)
        if kept is None or view.updated >= kept[1].updated:
            newest[view.id] = (raw, view)
    now = utcnow()
    rows = [_row(raw, view, now) for raw, view in newest.values()]
    written = 0
    for start in range(0, len(rows), _BATCH):
        statement = _write_return(session).values(rows[start : start + _BATCH])
        written += await rowcount(session, statement)
    return written


async def returns_for_emails(
    session: AsyncSession,
    emails: list[str],
    *,
    since: datetime,
    limit_per_email: int | None = None,
) -> list[LoopReturn]:
    """The stored returns of these addresses (any case) updated since `since`, with
    their notes, newest `updatedAt` first."""
    wanted = normalize_emails(emails)
    if not wanted:
        return []
    query = select(returns.c.id, returns.c.normalized, returns.c.updated_at).where(
        returns.c.customer_email.in_(wanted), returns.c.updated_at >= since
    )
    if limit_per_email is not None:
        rank = (
            func.row_number()
            .over(
                partition_by=returns.c.customer_email,
                order_by=(returns.c.updated_at.desc(), returns.c.id.desc()),
            )
            .label("rank")
        )
        ranked = query.add_columns(rank).subquery()
        query = select(ranked.c.id, ranked.c.normalized, ranked.c.updated_at).where(
            ranked.c.rank <= limit_per_email
        )
    rows = list((await session.execute(query)).all())
    rows.sort(key=lambda row: (row.updated_at, row.id), reverse=True)
    by_return = await _notes_of(session, [row.id for row in rows])
    return [_view(row.normalized, by_return.get(row.id, [])) for row in rows]


async def emails_of_returns(session: AsyncSession, return_ids: Sequence[str]) -> dict[str, str]:
    """The customer address of each stored return among `return_ids`, in one query."""
    if not return_ids:
        return {}
    query = select(returns.c.id, returns.c.customer_email).where(
        returns.c.id.in_(sorted(set(return_ids)))
    )
    return {row.id: row.customer_email for row in await session.execute(query)}


async def get_return(
    session: AsyncSession, return_id: str
) -> tuple[dict[str, Any], LoopReturn] | None:
    row = (
        await session.execute(
            select(returns.c.raw, returns.c.normalized).where(returns.c.id == return_id)
        )
    ).one_or_none()
    if row is None:
        return None
    found = await _notes_of(session, [return_id])
    return row.raw, _view(row.normalized, found.get(return_id, []))


@dataclass(frozen=True)
class StoredReturn:
    raw: dict[str, Any]
    normalized: dict[str, Any]
    updated_at: datetime
    # None: `updated_at` is Loop's own; else the kind of lower bound a webhook gave.
    version_source: str | None
    version_rank: int


async def lock_return(session: AsyncSession, return_id: str) -> None:
    """Serialize the writers of one return until the transaction ends, stored or not.

    PostgreSQL: a transaction-scoped advisory lock on the id's hash. SQLite: every
    transaction already holds the write lock (engine.py begins them IMMEDIATE).
    """
    if dialect_name(session) != "postgresql":
        return
    key = int.from_bytes(hashlib.sha256(return_id.encode()).digest()[:8], "big", signed=True)
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


# The (class, object) advisory-lock space of reads, apart from `lock_return`'s keys.
_READS = 0x4C44


@asynccontextmanager
async def read_lock(engine: AsyncEngine, return_id: str) -> AsyncIterator[None]:
    """One read of a return from Loop at a time across processes sharing PostgreSQL
    (a session lock on its own connection, so no transaction stays open meanwhile; a
    process that dies lets go of it). SQLite serves one process: nothing to do."""
    if engine.dialect.name != "postgresql":
        yield
        return
    key = int.from_bytes(hashlib.sha256(return_id.encode()).digest()[:4], "big", signed=True)
    params = {"space": _READS, "key": key}
    async with engine.connect() as connection:
        await connection.execute(text("SELECT pg_advisory_lock(:space, :key)"), params)
        await connection.commit()
        try:
            yield
        finally:
            await connection.execute(text("SELECT pg_advisory_unlock(:space, :key)"), params)
            await connection.commit()


_STORED = (
    returns.c.raw,
    returns.c.normalized,
    returns.c.updated_at,
    returns.c.version_source,
    returns.c.version_rank,
)


def _stored(row: Any) -> StoredReturn:
    return StoredReturn(
        raw=row.raw,
        normalized=row.normalized,
        updated_at=row.updated_at,
        version_source=row.version_source,
        version_rank=row.version_rank or 0,
    )


async def stored_return(session: AsyncSession, return_id: str) -> StoredReturn | None:
    row = (await session.execute(select(*_STORED).where(returns.c.id == return_id))).one_or_none()
    return None if row is None else _stored(row)


async def stored_returns(
    session: AsyncSession, return_ids: Iterable[str]
) -> dict[str, StoredReturn | None]:
    """`stored_return` of many returns in one query (None for those not stored)."""
    wanted = sorted(set(return_ids))
    found: dict[str, StoredReturn | None] = dict.fromkeys(wanted)
    if wanted:
        query = select(returns.c.id, *_STORED).where(returns.c.id.in_(wanted))
        for row in await session.execute(query):
            found[row.id] = _stored(row)
    return found


async def write_return(
    session: AsyncSession,
    raw: dict[str, Any],
    view: LoopReturn,
    *,
    version_source: str | None,
    version_rank: int,
) -> bool:
    """Store one return as decided by a webhook (the caller holds `lock_return`);
    True when written. Its `updated_at` still never moves backwards: a lookup that
    stored a newer copy meanwhile wins."""
    row = {
        **_row(raw, view, utcnow()),
        "version_source": version_source,
        "version_rank": version_rank,
    }
    return await rowcount(session, built(session, ("write_return",), _write_return), row) > 0


def _write_return(session: AsyncSession) -> Any:
    """The upsert every write of a return goes through: newest `updated_at` wins."""
    statement = insert(session, returns)
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[returns.c.id],
        set_={name: excluded[name] for name in _WRITTEN},
        where=excluded.updated_at >= returns.c.updated_at,
    )


async def replace_notes(
    session: AsyncSession,
    return_id: str,
    notes_: list[Note],
    *,
    raw: Sequence[Any] | None = None,
) -> None:
    """Make the stored notes of a return exactly `notes_` (in this order).

    `raw`, when given, holds Loop's note objects in the same order; otherwise the
    normalized note is kept as the raw value.
    """
    await replace_notes_many(session, {return_id: (notes_, raw)})


async def replace_notes_many(
    session: AsyncSession, by_return: dict[str, tuple[list[Note], Sequence[Any] | None]]
) -> None:
    """`replace_notes` for several returns in two statements: one delete, one insert
    (executed as many rows, so its compiled form is reused whatever the count)."""
    if not by_return:
        return
    ids = list(by_return)
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        await session.execute(delete(notes).where(notes.c.return_id.in_(chunk)))
    rows: list[dict[str, Any]] = []
    for return_id, (notes_, raw) in by_return.items():
        seen: set[str] = set()
        for index, note in enumerate(notes_):
            if note.id in seen:  # (return_id, id) is the primary key: keep the first
                continue
            seen.add(note.id)
            rows.append(
                {
                    "return_id": return_id,
                    "id": note.id,
                    "position": len(seen) - 1,
                    "content": note.content,
                    "created_at": note.createdAt,
                    "raw": raw[index] if raw is not None else note.model_dump(mode="json"),
                }
            )
    if rows:
        await session.execute(notes.insert(), rows)


async def _notes_of(session: AsyncSession, return_ids: list[str]) -> dict[str, list[Note]]:
    found: dict[str, list[Note]] = {}
    for start in range(0, len(return_ids), _BATCH):
        query = (
            select(notes.c.return_id, notes.c.id, notes.c.content, notes.c.created_at)
            .where(notes.c.return_id.in_(return_ids[start : start + _BATCH]))
            .order_by(notes.c.return_id, notes.c.position)
        )
        for row in await session.execute(query):
            found.setdefault(row.return_id, []).append(
                Note(
                    id=row.id, returnId=row.return_id, content=row.content, createdAt=row.created_at
                )
            )
    return found


def _view(normalized: dict[str, Any], with_notes: list[Note]) -> LoopReturn:
    return LoopReturn.model_validate({**normalized, "notes": with_notes})
