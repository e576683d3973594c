"""A per-key rolling-window limiter, like Loop's 300 requests a minute per API key.

Loop documents its 429 without a `Retry-After` header, so the sandbox sends none unless
asked (`retry_after=True`, setting `LOOPDESK_SANDBOX_RATE_LIMIT_RETRY_AFTER`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class RollingLimiter:
    def __init__(
        self,
        per_window: int,
        *,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        retry_after: bool = False,
    ) -> None:
        self.per_window = per_window
        self.retry_after = retry_after
        self.window_s = window_s
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str) -> float | None:
        """Count one request for `key`; None if allowed, else seconds until one is."""
        now = self._clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if len(hits) >= self.per_window:
            # Refused requests do not count, as with Laravel's throttle.
            return hits[0] + self.window_s - now
        hits.append(now)
        return None
