"""One upstream fetch per key at a time: concurrent callers share its result."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._inflight: dict[str, asyncio.Task[T]] = {}

    async def run(self, key: str, factory: Callable[[], Awaitable[T]]) -> T:
        task = self._inflight.get(key)
        if task is None:

            async def call() -> T:
                return await factory()

            task = asyncio.create_task(call())
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        # Shielded: one caller giving up does not cancel the fetch the others wait on.
        return await asyncio.shield(task)

    def running(self, key: str) -> bool:
        return key in self._inflight

    def __len__(self) -> int:
        return len(self._inflight)
