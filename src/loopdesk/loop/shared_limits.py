"""Loop's rate limit held across processes and machines, on Redis.

The same sliding window as `limits.LocalWindow`, as a sorted set per API key: a member
per request, scored when it was granted and scored again when its answer arrived, so the
workers' sum stays within Loop's budget in every window. A key's pause after a 429 is a
Redis key with a TTL, so one worker's 429 slows them all. Scripts run atomically on
Redis, with Redis's clock, so machines whose clocks differ still agree.

Callers treat any exception as "Redis unavailable" and fall back to the local window.
"""

from __future__ import annotations

import asyncio
import math
import secrets
from typing import Any, cast

from redis.asyncio import Redis

NAMESPACE = "loopdesk:loop-rate"
_TIMEOUT_S = 1.0
# Waits are taken in steps so a pause set by another worker, or a freed slot, is seen.
MAX_WAIT_STEP_S = 1.0

_NOW_MS = "local t = redis.call('TIME') local now = t[1] * 1000 + t[2] / 1000 "
# Microseconds as an integer (exact in a Lua double): orders grants and escalations.
_NOW_US = "local t = redis.call('TIME') local now_us = t[1] * 1000000 + t[2] "

# KEYS: window, pause. ARGV: limit, period_ms, member. -> {1, now_us} granted, or
# {0, wait_ms}.
_ACQUIRE = (
    _NOW_MS
    + _NOW_US
    + """
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then return {0, paused} end
local period = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(period * 2))
  return {1, now_us}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, math.max(1, math.ceil(oldest[2] + period - now))}
"""
)

# KEYS: window, level. ARGV: member, period_ms, ends_run (0/1).
_RELEASE = (
    _NOW_MS
    + """
redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 2))
if ARGV[3] == '1' then redis.call('DEL', KEYS[2]) end
return 0
"""
)

# KEYS: level. ARGV: when the refused request was granted (us). -> the new level, or 0
# when the request left before the last escalation (one burst, one step).
_ESCALATE = (
    _NOW_US
    + """
local at = tonumber(redis.call('HGET', KEYS[1], 'at') or '0')
if tonumber(ARGV[1]) <= at then return 0 end
local level = redis.call('HINCRBY', KEYS[1], 'level', 1)
redis.call('HSET', KEYS[1], 'at', string.format('%d', now_us))
redis.call('EXPIRE', KEYS[1], 3600)
return level
"""
)

# KEYS: pause. ARGV: ms. Never shortens a running pause; -> ms left.
_PAUSE = """
local left = redis.call('PTTL', KEYS[1])
local ms = tonumber(ARGV[1])
if ms > left then
  if ms > 0 then redis.call('SET', KEYS[1], '1', 'PX', ms) end
  return ms
end
return math.max(left, 0)
"""


class SharedWindow:
    def __init__(self, redis_url: str, per_minute: int) -> None:
        url = redis_url.removeprefix("async+")
        self._redis: Redis = Redis.from_url(
            url, socket_timeout=_TIMEOUT_S, socket_connect_timeout=_TIMEOUT_S
        )
        self.limit = per_minute
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._release = self._redis.register_script(_RELEASE)
        self._escalate = self._redis.register_script(_ESCALATE)
        self._pause = self._redis.register_script(_PAUSE)

    @staticmethod
    def _keys(fingerprint: str) -> tuple[str, str, str]:
        base = f"{NAMESPACE}:{fingerprint}"
        return f"{base}:window", f"{base}:pause", f"{base}:level"

    async def acquire(self, fingerprint: str, period_s: float) -> tuple[str, int]:
        """Wait until this key may send one more request: the member that counts it and
        when it was granted (Redis's clock, microseconds)."""
        window, pause, _ = self._keys(fingerprint)
        member = secrets.token_hex(8)
        while True:
            granted, value = cast(
                "list[int]",
                await self._acquire(
                    keys=[window, pause], args=[self.limit, period_s * 1000, member]
                ),
            )
            if granted:
                return member, int(value)
            await asyncio.sleep(min(MAX_WAIT_STEP_S, max(0.005, int(value) / 1000)))

    async def release(
        self, fingerprint: str, member: str, period_s: float, *, status: int | None
    ) -> None:
        """The attempt ended; any answer but a 429 ends the key's run of 429s."""
        window, _, level = self._keys(fingerprint)
        ends_run = status is not None and status != 429
        await self._release(keys=[window, level], args=[member, period_s * 1000, int(ends_run)])

    async def escalate(self, fingerprint: str, granted_us: int) -> int | None:
        """Count a 429 in a row: the new level, or None when the refused request left
        before the last escalation (it belongs to the pause already set)."""
        *_, level = self._keys(fingerprint)
        result = int(cast("Any", await self._escalate(keys=[level], args=[granted_us])))
        return result or None

    async def pause(self, fingerprint: str, seconds: float) -> float:
        """Pause the key for every worker (never shortening a pause); seconds left."""
        _, pause, _ = self._keys(fingerprint)
        ms = math.ceil(seconds * 1000)
        return int(cast("Any", await self._pause(keys=[pause], args=[ms]))) / 1000

    async def clear(self, fingerprint: str) -> None:
        await self._redis.delete(*self._keys(fingerprint))

    async def aclose(self) -> None:
        await self._redis.aclose()
