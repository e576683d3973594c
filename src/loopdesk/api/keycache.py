"""A short-lived memory of verified API keys, so a busy console does not cost a
database round trip per request. Revocation takes effect within `ttl_s`."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable

from loopdesk.customers.singleflight import SingleFlight


class KeyCache:
    def __init__(self, ttl_s: float = 10.0, max_entries: int = 1024) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[str, tuple[str, float]] = {}
        # When an entry lapses under load, the requests carrying that key share one check.
        self._checks: SingleFlight[str | None] = SingleFlight()

    @staticmethod
    def _digest(presented: str) -> str:
        return hashlib.sha256(presented.encode()).hexdigest()  # never the key itself

    def get(self, presented: str) -> str | None:
        entry = self._entries.get(self._digest(presented))
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, presented: str, name: str) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[self._digest(presented)] = (name, time.monotonic() + self.ttl_s)

    async def verify(
        self, presented: str, check: Callable[[], Awaitable[str | None]]
    ) -> str | None:
        """The cached name, else `check()`'s (one at a time per key), cached when found."""
        name = self.get(presented)
        if name is None:
            name = await self._checks.run(self._digest(presented), check)
            if name is not None:
                self.put(presented, name)
        return name

    def clear(self) -> None:
        self._entries.clear()
