"""The `Store`: one async engine, its sessions, and migrations on open."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool

from loopdesk.errors import ConfigError
from loopdesk.store.group_commit import GroupCommit, Write
from loopdesk.store.migrate import upgrade_sync

# How long a SQLite writer waits for another process's write lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 10_000
_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def async_url(database_url: str) -> URL:
    """The URL with its async driver: `postgresql://` and `sqlite://` are accepted too."""
    try:
        url = make_url(database_url)
    except Exception as exc:  # sqlalchemy raises ArgumentError, with the URL in it
        raise ConfigError("database_url is not a database URL") from exc
    backend = url.get_backend_name()
    if backend not in _ASYNC_DRIVERS:
        raise ConfigError(f"unsupported database {backend!r}: use sqlite or postgresql")
    if url.drivername != _ASYNC_DRIVERS[backend]:
        url = url.set(drivername=_ASYNC_DRIVERS[backend])
    return url


def create_engine(database_url: str) -> AsyncEngine:
    url = async_url(database_url)
    if url.get_backend_name() == "postgresql":
        # Several service processes share one server: a modest pool each, checked
        # before use so a restarted server does not fail the first request.
        return create_async_engine(url, pool_size=5, max_overflow=10, pool_pre_ping=True)
    options: dict[str, Any] = {}
    if url.database in (None, "", ":memory:"):
        # Every connection to :memory: is a new, empty database: share one.
        options["poolclass"] = StaticPool
    engine = create_async_engine(url, **options)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    event.listen(engine.sync_engine, "begin", _begin_immediate)
    return engine


READ_ONLY = "loopdesk_read_only"


def _begin_immediate(connection: Any) -> None:
    """Take SQLite's write lock when the transaction starts.

    A deferred transaction that reads and then writes cannot wait for another writer
    (SQLite answers "database is locked" at once, busy_timeout or not); starting
    with the lock makes writers of several processes queue instead.
    """
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside a writer, busy_timeout makes writers of several
    processes wait for each other instead of failing with "database is locked"."""
    # The driver must not open transactions itself: `_begin_immediate` does.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")  # durable enough under WAL
    finally:
        cursor.close()


def _enable_wal(cursor: Any) -> None:
    """WAL is a property of the file, set once. Switching needs a moment with no other
    connection busy, and SQLite does not wait for it: retry briefly (connect time only,
    when several processes open a new file together)."""
    for _ in range(40):
        cursor.execute("PRAGMA journal_mode")
        if str(cursor.fetchone()[0]).lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
        except Exception as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(0.025)
    cursor.execute("PRAGMA journal_mode = WAL")  # last try: let its error speak


class _WriterLock:
    """One writer at a time, in turn; a background writer takes the lock only when no
    other writer is waiting for it."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._waiting = 0  # writers (not background) waiting for the lock
        self._none_waiting = asyncio.Event()
        self._none_waiting.set()

    @asynccontextmanager
    async def hold(self, background: bool) -> AsyncIterator[None]:
        if background:
            while True:
                await self._none_waiting.wait()
                await self._lock.acquire()
                if not self._waiting:
                    break
                self._lock.release()  # one arrived meanwhile: it goes first
        else:
            self._waiting += 1
            self._none_waiting.clear()
            try:
                await self._lock.acquire()
            finally:
                self._waiting -= 1
                if not self._waiting:
                    self._none_waiting.set()
        try:
            yield
        finally:
            self._lock.release()


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._readers = async_sessionmaker(
            engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )
        # SQLite has one writer at a time. Writers of this process queue here, in turn,
        # rather than in SQLite's busy handler, which polls with sleeps of up to 100 ms
        # and lets throughput collapse as writers pile up (other processes still meet
        # in the busy handler).
        self._one_writer = engine.dialect.name == "sqlite"
        self._writer: tuple[asyncio.AbstractEventLoop, _WriterLock] | None = None
        self._together = GroupCommit(self.session)

    @classmethod
    async def open(cls, database_url: str, *, migrate: bool = True) -> Store:
        engine = create_engine(database_url)
        try:
            if migrate:
                await _upgrade(engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def session(self, *, background: bool = False) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back on error.

        `background`: work nobody waits for (applying acknowledged webhooks); on
        SQLite it lets every writer already waiting go first."""
        if not self._one_writer:
            async with self._sessions.begin() as session:
                yield session
            return
        async with self._writer_lock().hold(background), self._sessions.begin() as session:
            yield session

    async def together(self, write: Write) -> Any:
        """`write(session)` in a transaction shared with the writes of other requests
        arriving meanwhile (`group_commit`); returns once it is committed."""
        return await self._together.run(write)

    async def writes_settled(self) -> None:
        """Every write queued by `together` committed (or failed)."""
        await self._together.drained()

    def _writer_lock(self) -> _WriterLock:
        loop = asyncio.get_running_loop()
        if self._writer is None or self._writer[0] is not loop:
            self._writer = (loop, _WriterLock())
        return self._writer[1]

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction: on SQLite it does not take the write lock, so
        readers run side by side (and beside a writer, under WAL)."""
        async with self._readers.begin() as session:
            yield session

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True


async def _upgrade(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(upgrade_sync)


async def upgrade(database_url: str) -> None:
    """Migrate the database to the newest schema (`loopdesk db upgrade`)."""
    engine = create_engine(database_url)
    try:
        await _upgrade(engine)
    finally:
        await engine.dispose()
