"""Client-side rate limits, one per API key for the whole process.

Loop counts 300 requests/minute per API key, so every client holding the same key
must draw from one bucket. Keys are held as a hash: the registry must not become a
second place where a token lives in memory dumps or reprs.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref

from aiolimiter import AsyncLimiter

# Loop states its limit per minute; module-level so tests can shrink the window.
RATE_PERIOD_S = 60.0

# aiolimiter binds to the event loop it first runs on, so limiters are kept per loop
# (one loop in production; one per test under pytest-asyncio).
_registry: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, float, float], AsyncLimiter]
] = weakref.WeakKeyDictionary()


def token_fingerprint(token: str) -> str:
    """A stable, non-reversible name for an API key."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def shared_limiter(fingerprint: str, per_minute: float) -> AsyncLimiter:
    """The limiter every client with this key shares on the running event loop."""
    loop = asyncio.get_running_loop()
    per_loop = _registry.setdefault(loop, {})
    key = (fingerprint, float(per_minute), RATE_PERIOD_S)
    limiter = per_loop.get(key)
    if limiter is None:
        limiter = per_loop[key] = AsyncLimiter(per_minute, RATE_PERIOD_S)
    return limiter
