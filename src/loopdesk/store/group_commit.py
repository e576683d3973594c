"""Small writes from concurrent requests, committed together.

A write of one row costs little; its transaction (on SQLite, a turn of the one writer,
with its thread hops and commit) costs much more. Writes that arrive while a commit is
under way wait for the next one and share it, so a burst of N requests costs a few
transactions instead of N, and each caller still returns only once its write is
committed.

A write is a function of the session that touches only the database: when a shared
transaction fails, each of its writes runs again alone, so one bad write fails only
its own caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

Write = Callable[[AsyncSession], Awaitable[Any]]
Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]

# Writes per transaction at most: bounds how long one commit holds the writer.
MAX_BATCH = 256


class GroupCommit:
    """One queue of writes per event loop, drained by one task at a time."""

    def __init__(self, transaction: Transaction, *, max_batch: int = MAX_BATCH) -> None:
        self._transaction = transaction
        self._max_batch = max_batch
        self._queue: list[tuple[Write, asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.transactions = 0  # committed, shared or alone (for tests)

    async def run(self, write: Write) -> Any:
        """`write`'s result once its transaction committed; its error otherwise."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a store used from a new event loop (tests, CLI)
            self._loop, self._queue, self._task = loop, [], None
        done: asyncio.Future[Any] = loop.create_future()
        self._queue.append((write, done))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await done

    async def drained(self) -> None:
        """Wait until every queued write is committed (or failed)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[: self._max_batch]
            del self._queue[: len(batch)]
            try:
                results = await self._commit([write for write, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _fail(batch[0][1], exc)
                else:  # which write failed it? each alone says
                    for write, done in batch:
                        await self._alone(write, done)
                continue
            except BaseException as exc:  # cancelled (shutdown): no caller waits forever
                for _, done in [*batch, *self._queue]:
                    _fail(done, exc)
                self._queue.clear()
                raise
            for (_, done), result in zip(batch, results, strict=True):
                if not done.done():
                    done.set_result(result)

    async def _commit(self, writes: list[Write]) -> list[Any]:
        async with self._transaction() as session:
            results = [await write(session) for write in writes]
        self.transactions += 1
        return results

    async def _alone(self, write: Write, done: asyncio.Future[Any]) -> None:
        try:
            (result,) = await self._commit([write])
        except Exception as exc:
            _fail(done, exc)
            return
        if not done.done():
            done.set_result(result)


def _fail(done: asyncio.Future[Any], exc: BaseException) -> None:
    if not done.done():
        done.set_exception(exc)
