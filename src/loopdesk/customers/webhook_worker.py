"""The applier: webhook events are applied after they are acknowledged, in batches.

Events committed `received` are handed over by the receiver (no second read of the
database); events a crash or an outage left `received` are found by a sweep at
start-up and every `sweep_interval_s`. One task applies batches one after another
(`webhook_batch`), then tells `on_batch` what each did (re-routing, the customers'
memory view, metrics) before it takes the next. `aclose` drains what is queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta

import structlog

from loopdesk import store as db
from loopdesk.customers.webhook_batch import Applied, Stored, apply_batch
from loopdesk.customers.webhooks import ReturnReads, _parse, _reason

log = structlog.get_logger(__name__)

BATCH = 100
SWEEP_INTERVAL_S = 60.0
DRAIN_S = 30.0
# Events waiting at most before new deliveries wait for room: bounds what a crash
# leaves to the next start-up and how long a shutdown drains.
MAX_PENDING = 5000
# Events a batch left `received` (a deadlock between processes, the database or Loop
# briefly away) are tried again this many times, after 0.2 s, 0.4 s ..., before they
# are left to the sweep: a store that recovers in seconds catches up in seconds.
RETRIES = 4
RETRY_BASE_S = 0.2


class Applier:
    def __init__(
        self,
        store: db.Store,
        reads: ReturnReads | None,
        *,
        on_batch: Callable[[Applied], Awaitable[None]] | None = None,
        batch: int = BATCH,
        sweep_interval_s: float = SWEEP_INTERVAL_S,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._store = store
        self._reads = reads
        self._on_batch = on_batch
        self._batch = batch
        self._sweep_interval_s = sweep_interval_s
        self._max_pending = max(max_pending, 1)
        self._queue: dict[int, Stored] = {}  # in the order handed over
        self._in_flight: set[int] = set()
        self._retrying: dict[int, Stored] = {}  # waiting to be tried again
        self._tries: dict[int, int] = {}
        self._changed: asyncio.Condition | None = None
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._sweeps = 0  # under way (a shutdown lets them finish: they hold what is left)
        # Told of each batch besides `on_batch` (a sweep waiting for its events).
        self._listeners: list[Callable[[Applied], Awaitable[None]]] = []

    @property
    def pending(self) -> int:
        """Events handed over and not applied yet (in this process)."""
        return len(self._queue) + len(self._in_flight) + len(self._retrying)

    async def room(self) -> None:
        """Return once fewer than `max_pending` events wait (at once, almost always);
        a delivery waits here when the applier has fallen that far behind."""
        if len(self._queue) < self._max_pending:
            return
        condition = self._condition()
        async with condition:
            await condition.wait_for(lambda: len(self._queue) < self._max_pending)

    def submit(self, items: Iterable[Stored]) -> None:
        for item in items:
            if item.event_id not in self._in_flight:
                self._queue.setdefault(item.event_id, item)
        if self._queue:
            self._wakeup().set()

    def start(self) -> None:
        """The applying task and the sweeps: the first at once (what a crash left)."""
        if self._tasks:
            return
        self._wakeup()
        self._tasks = [asyncio.create_task(self._run()), asyncio.create_task(self._sweeping())]

    async def settled(self, ids: Iterable[int] | None = None) -> None:
        """Return once the events handed over (or `ids` among them) are applied, and
        what follows a batch (re-routing ...) is done."""
        wanted = None if ids is None else set(ids)
        condition = self._condition()
        async with condition:
            await condition.wait_for(lambda: not self._waiting_for(wanted))

    def _waiting_for(self, wanted: set[int] | None) -> bool:
        if wanted is None:
            return self.pending > 0
        return bool(wanted & self._known())

    async def aclose(self, drain_s: float = DRAIN_S) -> None:
        """Apply what is queued (for up to `drain_s`), then stop; what is left stays
        `received` for the next start-up."""
        if not self._tasks:
            return
        runner, sweeper = self._tasks
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            async with asyncio.timeout(drain_s):
                # A sweep under way (the start-up one, after a crash) is finished first:
                # the events it has not reached yet would otherwise wait for the next start.
                condition = self._condition()
                async with condition:
                    await condition.wait_for(lambda: self._sweeps == 0)
                sweeper.cancel()
                await self.settled()
        sweeper.cancel()
        if self.pending:
            log.warning("webhook.drain_incomplete", left=self.pending)
        runner.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks = []

    async def sweep(self, *, received_before: datetime | None = None) -> dict[str, int]:
        """Apply the stored `received` events (received before the moment, when
        given), oldest first, through the same batches: their outcomes' counts."""
        counts: dict[str, int] = {}
        after = 0
        while True:
            async with self._store.reader() as session:
                rows = await db.events_in(
                    session,
                    ("received",),
                    limit=self._batch,
                    after_id=after,
                    received_before=received_before,
                )
            if not rows:
                return counts
            after = rows[-1].id
            items = []
            for row in rows:
                event, problem = _parse(row.body)
                if event is not None:
                    items.append(Stored(row.id, event))
                    continue
                async with self._store.session() as session:
                    if await db.claim_event(session, row.id, ("received",)):
                        await db.mark_event(session, row.id, "failed", problem)
                        counts["failed"] = counts.get("failed", 0) + 1
            fresh = [item for item in items if item.event_id not in self._known()]
            outcomes = await self._apply_now(fresh)
            for result in outcomes.values():
                counts[result] = counts.get(result, 0) + 1

    def _known(self) -> set[int]:
        return set(self._queue) | self._in_flight | set(self._retrying)

    def _again_later(self, items: Iterable[Stored]) -> None:
        """Try `items` again after a pause that doubles per try; past `RETRIES`, they
        stay `received` for the sweep."""
        by_delay: dict[float, list[int]] = {}
        for item in items:
            tries = self._tries.get(item.event_id, 0) + 1
            if tries > RETRIES:
                self._tries.pop(item.event_id, None)
                continue
            self._tries[item.event_id] = tries
            self._retrying[item.event_id] = item
            by_delay.setdefault(RETRY_BASE_S * 2 ** (tries - 1), []).append(item.event_id)
        loop = asyncio.get_running_loop()
        for delay, ids in by_delay.items():
            loop.call_later(delay, self._resubmit, ids)

    def _resubmit(self, ids: list[int]) -> None:
        self.submit([self._retrying.pop(i) for i in ids if i in self._retrying])

    async def _apply_now(self, items: list[Stored]) -> dict[int, str]:
        """Hand `items` over and wait for them: their outcomes."""
        if not items:
            return {}
        outcomes: dict[int, str] = {}
        waiting = {item.event_id for item in items}

        async def note(applied: Applied) -> None:
            for event_id in waiting & applied.results.keys():
                outcomes[event_id] = applied.results[event_id]

        self._listeners.append(note)
        try:
            self.submit(items)
            while not self._tasks and self._queue:  # not started: applied in this call
                await self._drain_once()
            await self.settled(waiting)
        finally:
            self._listeners.remove(note)
        return outcomes

    async def _sweeping(self) -> None:
        started = datetime.now(UTC)
        await self._sweep_logged("webhook.replayed_at_start", received_before=started)
        if self._sweep_interval_s <= 0:
            return
        while True:
            await asyncio.sleep(self._sweep_interval_s)
            # Older than one interval: not one another process is about to apply.
            before = datetime.now(UTC) - timedelta(seconds=self._sweep_interval_s)
            await self._sweep_logged("webhook.swept", received_before=before)

    async def _sweep_logged(self, name: str, *, received_before: datetime) -> None:
        self._sweeps += 1
        try:
            counts = await self.sweep(received_before=received_before)
        except Exception as exc:  # the next sweep, start-up or `webhooks replay` tries again
            log.warning("webhook.sweep_failed", error=_reason(exc))
            return
        finally:
            self._sweeps -= 1
            condition = self._condition()
            async with condition:
                condition.notify_all()
        if counts:
            log.info(name, **counts)

    async def _run(self) -> None:
        wake = self._wakeup()
        while True:
            await wake.wait()
            wake.clear()
            while self._queue:
                await self._drain_once()

    async def _drain_once(self) -> None:
        taken = list(self._queue.values())[: self._batch]
        for item in taken:
            del self._queue[item.event_id]
            self._in_flight.add(item.event_id)
        try:
            started = time.perf_counter()
            applied = await apply_batch(self._store, taken, self._reads)
            for listener in [*self._listeners, *([self._on_batch] if self._on_batch else [])]:
                try:
                    await listener(applied)
                except Exception as exc:  # the events are applied all the same
                    log.warning("webhook.after_batch_failed", error=_reason(exc))
            log.debug(
                "webhook.batch_applied",
                seconds=round(time.perf_counter() - started, 3),
                left=len(self._queue),
                **applied.count(),
            )
            left = [item for item in taken if applied.results.get(item.event_id) == "received"]
            for item in taken:
                if applied.results.get(item.event_id) != "received":
                    self._tries.pop(item.event_id, None)
            self._again_later(left)
        except Exception as exc:  # left `received`: tried again soon, then by the sweep
            log.warning("webhook.batch_not_applied", error=_reason(exc), events=len(taken))
            self._again_later(taken)
        finally:
            self._in_flight.difference_update(item.event_id for item in taken)
            condition = self._condition()
            async with condition:
                condition.notify_all()

    def _wakeup(self) -> asyncio.Event:
        if self._wake is None:
            self._wake = asyncio.Event()
        return self._wake

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed
