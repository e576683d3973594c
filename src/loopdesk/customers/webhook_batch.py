"""Stored webhook events applied many to a transaction, with the rules of one.

A batch is applied in one transaction by the same steps as a single event
(`customers.webhooks`): its events claimed together, each applied in turn (seeing
what the ones before it wrote), their outcomes marked together; so versions decide
exactly as they do one by one: an older event never overwrites a newer state. Events
are taken return by return, each return's in id order (the order they were
received). On PostgreSQL the events are claimed before any return is locked, and
the batch's returns are locked in id order before they are read (in one query), so
two processes applying overlapping batches wait for each other instead of
deadlocking, and none decides on a return another is writing.

An event that needs Loop (no usable version) or fails is decided before it writes
anything: the batch leaves it `received`, then `apply_event` applies it on its own
(reads Loop, defers it or stores it `failed`, as for a single event), Loop read once
per return for the batch, returns side by side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.exc import SQLAlchemyError

from loopdesk import store as db
from loopdesk.customers.webhooks import (
    NOT_KNOWN,
    ReturnReads,
    WebhookDeferred,
    _apply_topic,
    _NeedsLoop,
    _parse,
    _reason,
    apply_event,
)
from loopdesk.domain.webhooks import WebhookEvent

log = structlog.get_logger(__name__)

# Returns applied on their own (reading Loop) at once, at most.
ALONE_AT_ONCE = 4


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
    reading: set[int] = set()  # those that need Loop's answer
    try:
        results = await _in_one_transaction(store, ordered, alone, reading)
    except SQLAlchemyError as exc:  # nothing of it committed: each on its own instead
        log.warning("webhook.batch_failed", error=_reason(exc), events=len(ordered))
        results, alone, reading = {}, list(ordered), set()
    once = _ReadOnce(reads)
    by_return: dict[str, list[Stored]] = {}
    for item in alone:
        by_return.setdefault(item.event.return_id or "", []).append(item)
    side_by_side = asyncio.Semaphore(ALONE_AT_ONCE)

    async def one_return(items: list[Stored]) -> None:
        async with side_by_side:
            for item in items:  # in id order
                try:
                    results[item.event_id] = await apply_event(
                        store,
                        item.event_id,
                        item.event,
                        once,
                        needs_loop=item.event_id in reading,
                    )
                except WebhookDeferred:
                    results[item.event_id] = "received"  # for the sweep or a redelivery

    await asyncio.gather(*(one_return(items) for items in by_return.values()))
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
    store: db.Store, ordered: list[Stored], alone: list[Stored], reading: set[int]
) -> dict[int, str]:
    results: dict[int, str] = {}
    async with store.session(background=True) as session:
        claimed = await db.claim_events(session, [item.event_id for item in ordered])
        # Every return locked (in id order), then read ahead in one query.
        return_ids = sorted({item.event.return_id for item in ordered if item.event.return_id})
        for return_id in return_ids:
            await db.lock_return(session, return_id)
        known = await db.stored_returns(session, return_ids)
        for item in ordered:
            if item.event_id not in claimed:
                results[item.event_id] = "duplicate"  # another process applied it
                continue
            try:
                results[item.event_id] = await _apply_topic(session, item.event, None, known)
            except _NeedsLoop:
                alone.append(item)
                reading.add(item.event_id)
            except SQLAlchemyError:
                raise  # the transaction may be lost: the whole batch goes alone
            except Exception as exc:  # decided before any write: `apply_event` classifies it
                log.debug("webhook.batch_apply_undone", event_id=item.event_id, error=_reason(exc))
                alone.append(item)
        await db.mark_events(
            session, {event_id: r for event_id, r in results.items() if r != "duplicate"}
        )
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
