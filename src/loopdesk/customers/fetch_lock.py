"""One upstream fetch per customer across workers and machines, on Redis.

The worker that takes the lock fetches; the others wait for its result to land in the
shared store and read it from there. The lock expires by itself, so a crashed worker
never blocks a customer for longer than its TTL.
"""

from __future__ import annotations

import hashlib
import secrets

import structlog
from redis.asyncio import Redis

log = structlog.get_logger(__name__)

PREFIX = "loopdesk:fetch:"
# Release only our own lock (a slow fetch may have outlived its TTL).
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class FetchLock:
    def __init__(self, redis_url: str, *, ttl_s: float = 30.0) -> None:
        self._redis = Redis.from_url(redis_url)
        self._ttl_ms = int(ttl_s * 1000)

    @staticmethod
    def _key(customer: str) -> str:
        # Hashed: customer emails do not belong in Redis key listings.
        return PREFIX + hashlib.sha256(customer.encode()).hexdigest()[:32]

    async def acquire(self, customer: str) -> str | None:
        """A token when this worker should fetch; None when another one is fetching."""
        token = secrets.token_hex(8)
        try:
            taken = await self._redis.set(self._key(customer), token, nx=True, px=self._ttl_ms)
        except Exception as exc:  # Redis down: fetch locally rather than fail a lookup
            log.warning("lookup.fetch_lock_unavailable", error=type(exc).__name__)
            return token
        return token if taken else None

    async def release(self, customer: str, token: str) -> None:
        try:
            await self._redis.eval(_RELEASE, 1, self._key(customer), token)
        except Exception as exc:
            log.warning("lookup.fetch_lock_unavailable", error=type(exc).__name__)

    async def aclose(self) -> None:
        await self._redis.aclose()
