"""Client-side rate limits: Loop's per-key budget over a sliding window, and 429 pauses.

Loop counts 300 requests in any sliding minute per API key. A token bucket (aiolimiter)
starts full and refills while it drains, so from a cold start it lets about twice the
budget through in the first minute; a moving window counted when a request is *asked
for* can still let a slow request land inside the next window. So each request holds a
slot from before it is sent until its answer arrives, and the slot stays in the window
for a full period after that: whenever Loop saw the request, the window we count covers it.

One `KeyRateLimit` per client; the window itself is per API key (and per event loop),
shared by every client holding that key in the process, or on Redis across processes
(`shared_limits`). Keys are held as a hash: the registry must not become a second place
where a token lives in memory dumps or reprs.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from loopdesk.errors import ConfigError
from loopdesk.loop.retry_policy import rate_limit_pause
from loopdesk.loop.shared_limits import SharedWindow
from loopdesk.settings import Settings

log = structlog.get_logger("loopdesk.loop")

# Loop states its limit per minute; module-level so tests can shrink the window.
RATE_PERIOD_S = 60.0
# How often a full window whose oldest slot is still in flight is looked at again.
_IN_FLIGHT_POLL_S = 0.05
PROCESSES_ENV = "LOOPDESK_LOOP_RATE_LIMIT_PROCESSES"


def token_fingerprint(token: str) -> str:
    """A stable, non-reversible name for an API key."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def process_share(per_minute: int, processes: int) -> int:
    """What one of `processes` processes may send per minute when they cannot share."""
    if processes > per_minute:
        raise ConfigError(
            f"{processes} processes cannot share {per_minute} Loop requests a minute "
            "without Redis: set LOOPDESK_REDIS_URL or run fewer workers"
        )
    return per_minute // processes


def serve_workers_env(settings: Settings, workers: int) -> dict[str, str]:
    """The environment `serve --workers N` gives its workers so N never multiplies the budget.

    Without Redis each worker gets its share (limit // processes); with Redis they share
    one window there and the share only applies while Redis is unreachable.
    """
    processes = max(settings.loop_rate_limit_processes, workers)
    process_share(settings.loop_rate_limit_per_minute, processes)  # refuse an empty share now
    return {PROCESSES_ENV: str(processes)}


@dataclass
class _Slot:
    granted: float
    in_flight: bool = True
    at: float = field(init=False)  # when it leaves the window's count: the answer's time

    def __post_init__(self) -> None:
        self.at = self.granted


class LocalWindow:
    """At most `limit` requests in any `period`, plus the key's pause after a 429."""

    def __init__(
        self, limit: int, period: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.period = period
        self._clock = clock
        self._slots: deque[_Slot] = deque()
        # Held while waiting, so waiters are served in order (as aiolimiter does).
        self._lock = asyncio.Lock()
        self.paused_until = 0.0
        self.level = 0  # 429s in a row without a success between them
        self._escalated_at = float("-inf")

    def wait_s(self) -> float | None:
        """None when a request may be sent now, else how long to wait before asking again."""
        now = self._clock()
        if self.paused_until > now:
            return self.paused_until - now
        cutoff = now - self.period
        slots = self._slots
        # Answers can arrive out of order, so a later slot may expire before the head:
        # it is then counted a little longer, never too short.
        while slots and not slots[0].in_flight and slots[0].at <= cutoff:
            slots.popleft()
        if len(slots) < self.limit:
            return None
        return max(slots[0].at - cutoff, _IN_FLIGHT_POLL_S)

    async def acquire(self) -> _Slot:
        async with self._lock:
            # Waits are computed, not signalled: a slot frees when time passes.
            while True:
                wait = self.wait_s()
                if wait is None:
                    break
                await asyncio.sleep(wait)
            slot = _Slot(self._clock())
            self._slots.append(slot)
            return slot

    def release(self, slot: _Slot, *, status: int | None) -> None:
        """The attempt ended (`status` None: without an answer): the window counts from now.

        Any answer but a 429 ends a run of 429s; a failed connection says nothing of it.
        """
        slot.at, slot.in_flight = self._clock(), False
        if status is not None and status != 429:
            self.level = 0

    def pause(self, seconds: float) -> float:
        """Pause the key for `seconds` (never shortening a longer pause); seconds left."""
        now = self._clock()
        self.paused_until = max(self.paused_until, now + seconds)
        return self.paused_until - now

    def escalate(self, granted: float) -> int | None:
        """Count a 429: the new level, or None when the refused request left before the
        last escalation (requests in flight together are one burst, one step)."""
        if granted <= self._escalated_at:
            return None
        self.level += 1
        self._escalated_at = self._clock()
        return self.level


# Windows bind to the event loop they run on (their lock does), so they are kept per
# loop: one loop in production, one per test under pytest-asyncio.
_registry: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, int, float], LocalWindow]
] = weakref.WeakKeyDictionary()


def local_window(fingerprint: str, limit: int, period: float | None = None) -> LocalWindow:
    """The window every client with this key shares on the running event loop
    (`period` None: Loop's minute)."""
    period = RATE_PERIOD_S if period is None else period
    per_loop = _registry.setdefault(asyncio.get_running_loop(), {})
    key = (fingerprint, limit, period)
    window = per_loop.get(key)
    if window is None:
        window = per_loop[key] = LocalWindow(limit, period)
    return window


@dataclass(frozen=True)
class Ticket:
    """One request's place in the window: local, or a member of the Redis window."""

    local: _Slot | None = None
    shared: str | None = None
    shared_granted_us: int = 0


class KeyRateLimit:
    """The rate limit one client applies: shared on Redis when configured, else local.

    While Redis is unreachable the local window takes over with this process's share
    of the budget, so the workers together still stay within it.
    """

    def __init__(
        self,
        fingerprint: str,
        settings: Settings,
        *,
        limit: int | None = None,
        period_s: float | None = None,
    ) -> None:
        """`limit` requests per `period_s`: Loop's budget per minute unless given (another
        upstream's, e.g. Gladly's 10 a second)."""
        self._fingerprint = fingerprint
        self._settings = settings
        budget = settings.loop_rate_limit_per_minute if limit is None else limit
        self._period_s = period_s
        processes = settings.loop_rate_limit_processes
        # Another upstream's small budget gives each process one request at least: more
        # processes than it allows then need Redis to stay within it.
        self._local_limit = (
            process_share(budget, processes) if limit is None else max(1, budget // processes)
        )
        self._shared = SharedWindow(settings.redis_url, budget) if settings.redis_url else None
        self._warned = False

    @property
    def period(self) -> float:
        return RATE_PERIOD_S if self._period_s is None else self._period_s

    def local(self) -> LocalWindow:
        return local_window(self._fingerprint, self._local_limit, self.period)

    async def acquire(self) -> Ticket:
        """Wait until this key may send one more request (pauses included); count it."""
        if self._shared is not None:
            try:
                member, granted_us = await self._shared.acquire(self._fingerprint, self.period)
                return Ticket(shared=member, shared_granted_us=granted_us)
            except Exception as exc:  # Redis down: this process's share still holds
                self._redis_failed(exc)
        return Ticket(local=await self.local().acquire())

    async def release(self, ticket: Ticket, *, status: int | None) -> None:
        if ticket.local is not None:
            self.local().release(ticket.local, status=status)
        if ticket.shared is not None and self._shared is not None:
            try:
                await self._shared.release(
                    self._fingerprint, ticket.shared, self.period, status=status
                )
            except Exception as exc:
                self._redis_failed(exc)

    async def rate_limited(self, ticket: Ticket, retry_after: float | None) -> float:
        """Loop answered 429 to `ticket`'s request: pause every request on this key;
        the seconds paused."""
        seconds = await self._pause_seconds(ticket, retry_after)
        left = self.local().pause(seconds)
        if self._shared is not None:
            try:
                left = max(left, await self._shared.pause(self._fingerprint, seconds))
            except Exception as exc:
                self._redis_failed(exc)
        log.warning(
            "loop.rate_limited",
            paused_s=round(left, 2),
            retry_after=retry_after,
            shared=self._shared is not None,
        )
        return left

    async def _pause_seconds(self, ticket: Ticket, retry_after: float | None) -> float:
        level: int | None = None
        if retry_after is None:
            level = await self._escalate(ticket)
            if level is None:  # another request's 429 already paused the key: join it
                return 0.0
        settings = self._settings
        return rate_limit_pause(
            level or 1,
            retry_after,
            first_s=settings.loop_rate_limit_backoff_s,
            max_s=settings.loop_rate_limit_max_backoff_s,
            max_retry_after=settings.http_max_retry_after_s,
        )

    async def _escalate(self, ticket: Ticket) -> int | None:
        if ticket.shared is not None and self._shared is not None:
            try:
                return await self._shared.escalate(self._fingerprint, ticket.shared_granted_us)
            except Exception as exc:
                self._redis_failed(exc)
        local = self.local()
        return local.escalate(ticket.local.granted if ticket.local else float("inf"))

    def _redis_failed(self, exc: Exception) -> None:
        if not self._warned:
            log.warning("loop.shared_limit_unavailable", error=type(exc).__name__)
            self._warned = True

    async def aclose(self) -> None:
        if self._shared is not None:
            await self._shared.aclose()
