"""Group commit of webhook deliveries: every delivery that arrives while a commit is
in flight is recorded in the next one, so a burst costs one transaction (and, on
SQLite, one turn of the writer lock) instead of one per delivery.

Each delivery waits for the commit that holds it before it is answered: a 2xx is
never sent for an event that is not stored. When the transaction fails, every
delivery in it is answered retry-later and none of them is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.exc import SQLAlchemyError

from loopdesk import store as db
from loopdesk.domain.webhooks import WebhookEvent, dedupe_key, envelope

log = structlog.get_logger(__name__)

# Deliveries per transaction at most: bounds how long one commit holds the writer.
MAX_BATCH = 500


@dataclass(frozen=True)
class Delivery:
    """One verified body, as it is to be stored."""

    dedupe_key: str
    topic: str
    trigger: str
    return_id: str | None
    body: bytes
    status: str = "received"
    error: str | None = None

    @classmethod
    def of(cls, body: bytes, event: WebhookEvent | None, problem: str | None) -> Delivery:
        """A verified body and what parsing it gave (`problem`: why it is unusable)."""
        topic, trigger, return_id = (
            (event.topic, event.trigger, event.return_id) if event else envelope(body)
        )
        return cls(
            dedupe_key=event.dedupe_key if event else dedupe_key(body, topic, trigger),
            topic=topic,
            trigger=trigger,
            return_id=return_id,
            body=body,
            status="failed" if problem else "received",
            error=problem,
        )

    def fields(self) -> dict[str, Any]:
        """`store.record_event`'s arguments."""
        return {
            "dedupe_key": self.dedupe_key,
            "topic": self.topic,
            "trigger": self.trigger,
            "return_id": self.return_id,
            "body": self.body,
            "status": self.status,
            "error": self.error,
        }


@dataclass(frozen=True)
class Recorded:
    event_id: int
    new: bool
    # The stored status: the delivery's own when new, else the first delivery's now.
    status: str | None


class RecordFailed(Exception):
    """The transaction holding the delivery did not commit: nothing of it is stored."""


@dataclass
class _Pending:
    delivery: Delivery
    done: asyncio.Future[Recorded] = field(repr=False)


class Recorder:
    """Records deliveries in shared transactions, one flush at a time."""

    def __init__(self, store: db.Store, *, max_batch: int = MAX_BATCH) -> None:
        self._store = store
        self._max_batch = max_batch
        self._queue: list[_Pending] = []
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # transactions committed (for tests and metrics)

    async def record(self, delivery: Delivery) -> Recorded:
        """Stored once this returns; RecordFailed when its transaction failed."""
        loop = asyncio.get_running_loop()
        pending = _Pending(delivery, loop.create_future())
        self._queue.append(pending)
        self._ensure_running().set()
        assert self._idle is not None
        self._idle.clear()
        return await pending.done

    def _ensure_running(self) -> asyncio.Event:
        if self._task is None or self._task.done():
            self._wake, self._idle = asyncio.Event(), asyncio.Event()
            self._task = asyncio.create_task(self._run(self._wake, self._idle))
        assert self._wake is not None
        return self._wake

    async def aclose(self) -> None:
        """Record what is queued, then stop."""
        task, self._task = self._task, None
        if task is None:
            return
        if self._idle is not None and not task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), 10)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self, wake: asyncio.Event, idle: asyncio.Event) -> None:
        while True:
            await wake.wait()
            wake.clear()
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: len(batch)]
                await self._flush(batch)
            idle.set()

    async def _flush(self, batch: list[_Pending]) -> None:
        # In the order they arrived, so event ids follow it (each return's events are
        # applied in id order). Two processes recording the same redelivered events in
        # opposite orders can deadlock on PostgreSQL: it ends one, whose deliveries are
        # answered retry-later like any failed batch.
        ordered = batch
        try:
            results = await self._write([p.delivery for p in ordered])
        except SQLAlchemyError as exc:
            log.warning("webhook.store_failed", error=type(exc).__name__, events=len(batch))
            for pending in ordered:
                if not pending.done.done():
                    pending.done.set_exception(RecordFailed())
            return
        except BaseException:
            for pending in ordered:
                if not pending.done.done():
                    pending.done.set_exception(RecordFailed())
            raise
        self.batches += 1
        for pending, recorded in zip(ordered, results, strict=True):
            if not pending.done.done():
                pending.done.set_result(recorded)

    async def _write(self, deliveries: list[Delivery]) -> list[Recorded]:
        results: list[Recorded] = []
        async with self._store.session() as session:
            for d in deliveries:
                event_id, new = await db.record_event(session, **d.fields())
                status = d.status if new else await db.event_status(session, event_id)
                results.append(Recorded(event_id, new, status))
        return results
