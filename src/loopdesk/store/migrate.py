"""Alembic, driven from code: the scripts ship inside the package and the database
URL comes from the caller, so `loopdesk db upgrade` works from any directory."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
HEAD = "head"
# Any constant: serializes concurrent upgrades of one PostgreSQL database.
_PG_LOCK_ID = 0x100D_DE5C


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    # ConfigParser interpolates `%`; escape it in paths and passwords.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_sync(connection: Connection, revision: str = HEAD) -> None:
    """Upgrade on an open connection (called through `AsyncConnection.run_sync`).

    Several processes may start at once: each takes a lock first, so the second sees
    the first one's finished schema instead of creating the tables again.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
    # SQLite: the engine begins every transaction with BEGIN IMMEDIATE (engine.py), so
    # the version check and the DDL already run under the write lock.
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
