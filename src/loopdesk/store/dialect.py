"""The two dialect-specific statements we need: upsert and insert-or-get-id.

Both PostgreSQL and SQLite (3.35+) speak `INSERT .. ON CONFLICT` and `RETURNING`,
through different SQLAlchemy constructs with the same methods.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from loopdesk.errors import ConfigError

Insert = postgresql.Insert | sqlite.Insert


def dialect_name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def insert(session: AsyncSession, table: Table) -> Insert:
    name = dialect_name(session)
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise ConfigError(f"unsupported database dialect {name!r}: use SQLite or PostgreSQL")


async def rowcount(
    session: AsyncSession, statement: Any, parameters: dict[str, Any] | None = None
) -> int:
    result = cast(CursorResult[Any], await session.execute(statement, parameters))
    return max(result.rowcount, 0)


# Statements built once per (dialect, use) and executed with their values as
# parameters: building an upsert and its cache key from a row of large JSON values
# costs more than running it.
_BUILT: dict[tuple[str, ...], Any] = {}


def built(session: AsyncSession, use: tuple[str, ...], build: Any) -> Any:
    """The statement `build(session)` makes for `use`, made once per dialect."""
    key = (dialect_name(session), *use)
    statement = _BUILT.get(key)
    if statement is None:
        statement = _BUILT[key] = build(session)
    return statement


async def insert_or_get_id(
    session: AsyncSession, table: Table, values: dict[str, Any], keys: list[str]
) -> tuple[int, bool]:
    """Insert a row unless one with the same unique `keys` exists: (id, inserted).

    ON CONFLICT DO NOTHING never raises, so a duplicate does not spoil the caller's
    transaction; on PostgreSQL it also waits for a concurrent insert of the same key
    to commit, after which the SELECT sees that row.
    """
    statement = built(
        session,
        ("insert_or_get_id", table.name, *keys, *sorted(values)),
        lambda s: (
            insert(s, table).on_conflict_do_nothing(index_elements=keys).returning(table.c.id)
        ),
    )
    new_id = (await session.execute(statement, values)).scalar_one_or_none()
    if new_id is not None:
        return int(new_id), True
    query = select(table.c.id).where(*(table.c[k] == values[k] for k in keys))
    return int((await session.execute(query)).scalar_one()), False
