"""Stored webhook events applied many to a transaction, with the rules of one.

A batch is applied in one transaction, each event in its own savepoint, by the same
claim-apply-mark steps as a single event (`customers.webhooks`), so versions decide
exactly as they do one by one: an older event never overwrites a newer state. Events
are taken return by return, each return's in id order (the order they were
received); on PostgreSQL each return is locked before its events are claimed, and
returns in id order, so two processes applying overlapping batches wait for each
other instead of deadlocking.

An event that needs Loop (no usable version) or fails is undone to its savepoint and
then applied on its own by `apply_event`, which reads Loop, defers (stays `received`)
or stores it `failed`, as for a single event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.exc import SQLAlchemyError

from loopdesk import store as db
from loopdesk.customers.webhooks import (
    NOT_KNOWN,
    Result,
    ReturnReads,
    WebhookDeferred,
    _apply_claimed,
    _NeedsLoop,
    _parse,
    _reason,
    apply_event,
)
from loopdesk.domain.webhooks import WebhookEvent

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Stored:
    """An event committed `received`, to apply."""

    event_id: int
    event: WebhookEvent


@dataclass
class Applied:
    """What a batch did: each event's outcome (`received` when it stays to apply
    later) and the returns it changed."""

    results: dict[int, str] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)

    def count(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for result in self.results.values():
            counts[result] = counts.get(result, 0) + 1
        return counts


class _ReadOnce(ReturnReads):
    """Loop read at most once per return for a batch: every event in it was received
    before the read, so Loop's answer is at least as new as each of them."""

    def __init__(self, reads: ReturnReads | None) -> None:
        super().__init__(None)
        self._reads = reads or ReturnReads(None)
        self._answers: dict[str, Any] = {}

    async def read(self, return_id: str) -> Any:
        if return_id not in self._answers:
            self._answers[return_id] = await self._reads.read(return_id)
        return self._answers[return_id]


def _order(item: Stored) -> tuple[str, int]:
    return (item.event.return_id or "", item.event_id)


async def apply_batch(
    store: db.Store, items: Sequence[Stored], reads: ReturnReads | None
) -> Applied:
    ordered = sorted(items, key=_order)
    done = Applied()
    alone: list[Stored] = []
    try:
        results = await _in_one_transaction(store, ordered, alone)
    except SQLAlchemyError as exc:  # nothing of it committed: each on its own instead
        log.warning("webhook.batch_failed", error=_reason(exc), events=len(ordered))
        results, alone = {}, list(ordered)
    once = _ReadOnce(reads)
    for item in alone:
        try:
            results[item.event_id] = await apply_event(store, item.event_id, item.event, once)
        except WebhookDeferred:
            results[item.event_id] = "received"  # kept for the sweep or a redelivery
    done.results = dict(results)
    changed: dict[str, None] = {}
    for item in ordered:
        if done.results.get(item.event_id) == "applied" and item.event.return_id:
            changed[item.event.return_id] = None
    # Label events that came before their return are applied once it is stored.
    returns_arrived = [
        item.event.return_id
        for item in ordered
        if item.event.topic == "return"
        and item.event.return_id
        and done.results.get(item.event_id) == "applied"
    ]
    for return_id in await _release_waiting_labels(store, reads, returns_arrived):
        changed[return_id] = None
    done.changed = list(changed)
    return done


async def _in_one_transaction(
    store: db.Store, ordered: list[Stored], alone: list[Stored]
) -> dict[int, str]:
    results: dict[int, str] = {}
    async with store.session() as session:
        locked: str | None = None
        for item in ordered:
            return_id = item.event.return_id
            if return_id and return_id != locked:
                await db.lock_return(session, return_id)
                locked = return_id
            try:
                async with session.begin_nested():
                    result: Result = await _apply_claimed(
                        session, item.event_id, item.event, None, ("received",)
                    )
            except _NeedsLoop:
                alone.append(item)
                continue
            except Exception as exc:  # classified by `apply_event`, which logs it
                log.debug("webhook.batch_apply_undone", event_id=item.event_id, error=_reason(exc))
                alone.append(item)
                continue
            results[item.event_id] = result
    # Applied with the batch: not retried alone even if listed (it was not).
    alone[:] = [item for item in alone if item.event_id not in results]
    return results


async def _release_waiting_labels(
    store: db.Store, reads: ReturnReads | None, return_ids: list[str]
) -> list[str]:
    """Apply the label events kept `failed` because their return was unknown, for the
    returns that have now arrived; the returns they changed."""
    if not return_ids:
        return []
    try:
        async with store.reader() as session:
            rows = await db.events_in(session, ("failed",), return_ids=sorted(set(return_ids)))
    except SQLAlchemyError as exc:  # they stay kept, for `replay`
        log.warning("webhook.release_failed", error=_reason(exc))
        return []
    changed = []
    for row in rows:
        event, _ = _parse(row.body)
        if event is None or event.topic != "label" or row.error != NOT_KNOWN:
            continue
        try:
            result = await apply_event(store, row.id, event, reads, statuses=("failed",))
        except WebhookDeferred:
            continue  # still kept, for `replay`
        if result == "applied" and event.return_id:
            changed.append(event.return_id)
    return changed
