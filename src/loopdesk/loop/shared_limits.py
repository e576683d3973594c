"""Loop's rate limit held across processes and machines, on Redis.

Each worker also keeps its local limiter; this one makes the workers' sum stay within
Loop's 300 requests/minute per key. A moving window (the `limits` package) matches
how Loop counts. If Redis is unreachable the local limits still hold, and we say so.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

log = structlog.get_logger(__name__)

NAMESPACE = "loopdesk:loop-rate"
MAX_WAIT_STEP_S = 1.0


class SharedRateLimit:
    def __init__(self, redis_url: str, per_minute: int) -> None:
        url = redis_url if redis_url.startswith("async+") else f"async+{redis_url}"
        self._limiter = MovingWindowRateLimiter(RedisStorage(url))
        self._item = RateLimitItemPerMinute(per_minute)
        self._warned = False

    async def acquire(self, fingerprint: str) -> None:
        """Wait until this key may send one more request, counting it."""
        while True:
            try:
                if await self._limiter.hit(self._item, NAMESPACE, fingerprint):
                    return
                stats = await self._limiter.get_window_stats(self._item, NAMESPACE, fingerprint)
            except Exception as exc:  # Redis down: the per-process limit still applies
                if not self._warned:
                    log.warning("loop.shared_limit_unavailable", error=type(exc).__name__)
                    self._warned = True
                return
            await asyncio.sleep(min(MAX_WAIT_STEP_S, max(0.02, stats.reset_time - time.time())))

    async def clear(self, fingerprint: str) -> None:
        await self._limiter.clear(self._item, NAMESPACE, fingerprint)
