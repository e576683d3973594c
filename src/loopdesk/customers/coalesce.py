"""One call per key at a time, and every caller gets a result that began after it asked.

Unlike `SingleFlight`, a caller arriving while a call is under way does not share that
call (it may have read the upstream before the change the caller was told about): it
waits for the next one, which starts when the current one ends and is shared by
everyone who arrived meanwhile. So however many callers come, at most one call runs
per key, and at most one more is queued.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Coalescer(Generic[T]):
    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[T]] = {}
        self._queued: dict[str, asyncio.Task[T]] = {}

    async def run(self, key: str, factory: Callable[[], Awaitable[T]]) -> T:
        task = self._queued.get(key)
        if task is None:
            task = asyncio.create_task(self._call(key, self._running.get(key), factory))
            self._queued[key] = task
        # Shielded: one caller giving up does not cancel the call the others wait on.
        return await asyncio.shield(task)

    async def _call(
        self, key: str, previous: asyncio.Task[T] | None, factory: Callable[[], Awaitable[T]]
    ) -> T:
        if previous is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait([previous])
        this = asyncio.current_task()
        if self._queued.get(key) is this:  # from now on, newcomers queue behind us
            del self._queued[key]
        self._running[key] = this  # type: ignore[assignment]
        try:
            return await factory()
        finally:
            if self._running.get(key) is this:
                del self._running[key]

    def __len__(self) -> int:
        return len(self._running) + len(self._queued)
