"""Loop's webhooks keep the store fresh: verify, store, acknowledge, apply.

An event is committed to the events table (`received`) before it is applied, so an
acknowledged event is never lost. Applying it claims the row, writes the return and
marks the outcome in one transaction: a crash or an outage in between leaves it
`received`, and its redelivery, `loopdesk webhooks replay` or the next start-up
applies it, exactly once. An event that can never be applied as sent is stored
`failed` with the reason and acknowledged, so Loop stops retrying.

Which event wins is decided by its version (see `loopdesk.domain.webhooks`); an event
that cannot be ordered against the stored return (no version, equal times) makes us
read the return from Loop and store what Loop says now, one read per return at a time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

import structlog
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from loopdesk import store as db
from loopdesk.customers.coalesce import Coalescer
from loopdesk.customers.webhook_record import Delivery
from loopdesk.domain.models import LoopReturn
from loopdesk.domain.normalize import normalize_return
from loopdesk.domain.webhooks import (
    LABEL_FIELDS,
    Decision,
    Source,
    Version,
    WebhookEvent,
    check_return,
    decide,
    decide_label,
    label_time,
    parse_event,
    return_id_of,
    signature_valid_any,
    timestamp,
)
from loopdesk.errors import (
    InvalidInput,
    InvalidUpstreamData,
    LoopdeskError,
    LoopError,
    LoopNotFound,
    LoopRejected,
    LoopUnavailable,
    LoopValidationError,
    Unauthorized,
)

log = structlog.get_logger(__name__)

NOT_KNOWN = "Loop does not know this return"
# Webhook envelope fields that are not part of the return object.
ENVELOPE_FIELDS = ("topic", "trigger")
# `received`: stored, applied after the answer (`webhook_desk`).
Result = Literal["applied", "unchanged", "stale", "ignored", "failed", "duplicate", "received"]
# Errors that no retry can cure, though some are kinds of transient ones (LoopNotFound
# is a LoopError, DataError a database error): the event is stored `failed`.
_PERMANENT = (LoopNotFound, LoopRejected, LoopValidationError, DataError, IntegrityError)


_NOT_APPLIED: dict[Decision, Result] = {
    Decision.STALE: "stale",
    Decision.UNCHANGED: "unchanged",
}


class WebhookDeferred(LoopdeskError):
    """Stored, not applied yet (Loop or the database is unavailable): send it again."""

    code = "webhook_deferred"
    http_status = 503


class ReturnReader(Protocol):
    async def return_details(self, return_id: str) -> Any: ...


class ReturnReads:
    """The reads from Loop that events without a usable version ask for: one per
    return at a time in this process (`Coalescer`) and, with `store` on PostgreSQL,
    across the processes sharing it."""

    def __init__(self, reader: ReturnReader | None, store: db.Store | None = None) -> None:
        self._reader = reader
        self._store = store
        self._calls: Coalescer[Any] = Coalescer()

    async def read(self, return_id: str) -> Any:
        reader = self._reader
        if reader is None:
            raise LoopUnavailable("no Loop client configured to read the return")

        async def call() -> Any:
            if self._store is None:
                return await reader.return_details(return_id)
            async with db.read_lock(self._store.engine, return_id):
                return await reader.return_details(return_id)

        return await self._calls.run(return_id, call)


@dataclass(frozen=True)
class Ingested:
    event_id: int
    result: Result


class _NeedsLoop(Exception):
    """The stored return and the event cannot be ordered: read the return from Loop."""


async def ingest(
    store: db.Store,
    body: bytes,
    presented_signature: str | None,
    secrets: Sequence[str],
    *,
    reads: ReturnReads | None = None,
    on_applied: Callable[[str], Awaitable[None]] | None = None,
) -> Ingested:
    """`on_applied`, when given, is told the id of a return an applied event changed
    (routing compares its customer's outcome); it must not raise."""
    if not signature_valid_any(body, presented_signature, secrets):
        raise Unauthorized("missing or invalid X-Loop-Signature")
    event, problem = _parse(body)
    delivery = Delivery.of(body, event, problem)
    applied: Result | None = None
    try:
        async with store.session() as session:
            event_id, new = await db.record_event(session, **delivery.fields())
            status = "received" if new else await db.event_status(session, event_id)
            if new and event is not None and status == "received":
                applied = await _apply_with_record(session, event_id, event)
    except SQLAlchemyError as exc:
        log.warning("webhook.store_failed", error=type(exc).__name__)
        raise WebhookDeferred("the event could not be stored; send it again") from None
    if event is None or status != "received":
        if problem and new:
            log.warning("webhook.unusable", event_id=event_id, error=problem)
        return Ingested(event_id, "failed" if new else "duplicate")
    # Applied with its record, else (a redelivery of an event stored but never applied,
    # one that needs Loop, one whose apply failed) applied now on its own.
    result = applied or await apply_event(store, event_id, event, reads)
    if result == "applied" and event.topic == "return" and event.return_id:
        await _release_waiting_labels(store, reads, event.return_id)
    if result == "applied" and event.return_id and on_applied is not None:
        await on_applied(event.return_id)
    return Ingested(event_id, result)


async def _release_waiting_labels(
    store: db.Store, reads: ReturnReads | None, return_id: str
) -> None:
    """Label events that came before their return, when neither the store nor Loop
    knew it, are applied once the return arrives."""
    try:
        async with store.reader() as session:
            rows = await db.events_in(session, ("failed",), return_id=return_id)
    except SQLAlchemyError as exc:  # they stay kept, for `replay`
        log.warning("webhook.release_failed", error=_reason(exc))
        return
    for row in rows:
        event, _ = _parse(row.body)
        if event is None or event.topic != "label" or row.error != NOT_KNOWN:
            continue
        try:
            await apply_event(store, row.id, event, reads, statuses=("failed",))
        except WebhookDeferred:
            continue  # still kept, for `replay`


async def replay(
    store: db.Store,
    *,
    reads: ReturnReads | None = None,
    statuses: tuple[str, ...] = db.REPLAYABLE,
    limit: int = 100,
) -> dict[str, int]:
    """Apply the stored events in `statuses` (oldest first, at most `limit`): the
    counts of their new outcomes (`received`: still not applicable, e.g. Loop down)."""
    counts: dict[str, int] = {}
    after, left = 0, max(limit, 0)
    while left:
        async with store.reader() as session:
            rows = await db.events_in(session, statuses, limit=min(left, 100), after_id=after)
        if not rows:
            break
        for row in rows:
            after, left = row.id, left - 1
            result = await _replay_one(store, reads, row, statuses)
            counts[result] = counts.get(result, 0) + 1
    return counts


async def replay_received(store: db.Store, reads: ReturnReads | None) -> dict[str, int]:
    """Start-up: apply what a crash or an outage left `received`."""
    try:
        counts = await replay(store, reads=reads, statuses=("received",), limit=1_000_000)
    except Exception as exc:  # the next start-up or `webhooks replay` tries again
        log.warning("webhook.replay_at_start_failed", error=_reason(exc))
        return {}
    if counts:
        log.info("webhook.replayed_at_start", **counts)
    return counts


async def _replay_one(
    store: db.Store, reads: ReturnReads | None, row: db.EventRow, statuses: tuple[str, ...]
) -> str:
    event, problem = _parse(row.body)
    if event is None:
        async with store.session() as session:
            if not await db.claim_event(session, row.id, statuses):
                return "duplicate"
            await db.mark_event(session, row.id, "failed", problem)
        return "failed"
    try:
        return await apply_event(store, row.id, event, reads, statuses=statuses)
    except WebhookDeferred:
        return "received"


def _parse(body: bytes) -> tuple[WebhookEvent | None, str | None]:
    try:
        return parse_event(body), None
    except InvalidInput as exc:
        return None, exc.message


async def apply_event(
    store: db.Store,
    event_id: int,
    event: WebhookEvent,
    reads: ReturnReads | None,
    *,
    statuses: tuple[str, ...] = ("received",),
    needs_loop: bool = False,
) -> Result:
    """Apply one stored event; WebhookDeferred when it stays `received` for now.
    `needs_loop`: it is known not to apply without a read from Loop (read it first)."""
    try:
        try:
            if needs_loop:
                raise _NeedsLoop
            return await _apply_once(store, event_id, event, None, statuses)
        except _NeedsLoop:
            assert event.return_id is not None  # parse_event refuses return events without
            fetched = await (reads or ReturnReads(None)).read(event.return_id)
            try:
                return await _apply_once(store, event_id, event, fetched, statuses)
            except _NeedsLoop:
                raise InvalidUpstreamData("Loop's answer does not settle the event") from None
    except Exception as exc:
        error = _reason(exc)
        if _transient(exc):
            log.warning("webhook.apply_deferred", event_id=event_id, error=error)
            await _note(store, event_id, error)
            raise _deferred(event_id) from None
        log.warning("webhook.apply_failed", event_id=event_id, error=error)
    try:
        async with store.session() as session:
            if await db.claim_event(session, event_id, statuses):
                await db.mark_event(session, event_id, "failed", error)
    except SQLAlchemyError:
        raise _deferred(event_id) from None
    return "failed"


def _deferred(event_id: int) -> WebhookDeferred:
    return WebhookDeferred(
        "the event is stored and will be applied when it is sent again",
        details={"eventId": event_id},
    )


def _transient(exc: Exception) -> bool:
    """An outage (Loop, the database, the network): the event stays `received` for its
    redelivery, `replay` or the next start-up. Anything else would fail the same way
    every time, so the event is stored `failed` and acknowledged (Loop deactivates a
    webhook that keeps failing)."""
    if isinstance(exc, _PERMANENT):
        return False
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        return False  # a value the database driver refused before sending it
    return isinstance(exc, LoopError | SQLAlchemyError | OSError | TimeoutError)


async def _note(store: db.Store, event_id: int, error: str) -> None:
    try:
        async with store.session() as session:
            await db.note_event_error(session, event_id, error)
    except SQLAlchemyError:
        pass  # the database is what failed: the event stays `received` all the same


def _reason(exc: BaseException) -> str:
    """Why an event did not apply, for its row and the log: never the values (they
    may hold customer data), only what kind of problem it was."""
    if isinstance(exc, LoopNotFound):
        return NOT_KNOWN
    if isinstance(exc, LoopdeskError):
        return exc.message
    if isinstance(exc, SQLAlchemyError):
        return f"database error: {type(getattr(exc, 'orig', None) or exc).__name__}"
    return type(exc).__name__


async def _apply_once(
    store: db.Store,
    event_id: int,
    event: WebhookEvent,
    fetched: Any,
    statuses: tuple[str, ...],
) -> Result:
    async with store.session() as session:
        return await _apply_claimed(session, event_id, event, fetched, statuses)


async def _apply_claimed(
    session: AsyncSession,
    event_id: int,
    event: WebhookEvent,
    fetched: Any,
    statuses: tuple[str, ...],
) -> Result:
    if not await db.claim_event(session, event_id, statuses):
        return "duplicate"  # another process applied it meanwhile
    result = await _apply_topic(session, event, fetched)
    await db.mark_event(session, event_id, result)
    return result


async def _apply_topic(
    session: AsyncSession,
    event: WebhookEvent,
    fetched: Any,
    known: dict[str, db.StoredReturn | None] | None = None,
) -> Result:
    """Apply a claimed event in the caller's transaction: its outcome. Nothing is
    written before it is decided, so a raise (`_NeedsLoop`, a bad value) leaves the
    transaction as it was, apart from database errors. `known`: stored returns read
    ahead in this transaction, each used once (a write may follow)."""
    if event.topic == "return":
        return await _apply_return(session, event, fetched, known)
    if event.topic == "label":
        return await _apply_label(session, event, fetched, known)
    return "ignored"


async def _stored_now(
    session: AsyncSession, return_id: str, known: dict[str, db.StoredReturn | None] | None
) -> db.StoredReturn | None:
    if known is not None and return_id in known:
        return known.pop(return_id)
    return await db.stored_return(session, return_id)


async def _apply_with_record(
    session: AsyncSession, event_id: int, event: WebhookEvent
) -> Result | None:
    """A new event applied in the transaction that records it, when it needs nothing
    from Loop: one commit holds the event and its outcome (a crash before it leaves
    neither, and no 2xx was sent). None, with the apply undone and the record kept,
    when it needs Loop or fails: `apply_event` then takes it on its own."""
    try:
        async with session.begin_nested():
            return await _apply_claimed(session, event_id, event, None, ("received",))
    except _NeedsLoop:
        return None
    except Exception as exc:  # decided by `apply_event`, which logs and classifies it
        log.debug("webhook.apply_with_record_undone", event_id=event_id, error=_reason(exc))
        return None


# --- return events ----------------------------------------------------------------


async def _apply_return(
    session: AsyncSession,
    event: WebhookEvent,
    fetched: Any,
    known: dict[str, db.StoredReturn | None] | None = None,
) -> Result:
    return_id = _id(event)
    await db.lock_return(session, return_id)
    stored = await _stored_now(session, return_id, known)
    if fetched is not None:
        return await _store_read(session, return_id, stored, fetched)
    raw = {k: v for k, v in event.payload.items() if k not in ENVELOPE_FIELDS}
    check_return(raw)
    if stored is not None:
        raw = _newer_label(stored.raw, raw)
    version = event.version
    view = normalize_return(raw)
    view = _at(view, _written_at(view, version, stored))
    same = stored is not None and stored.normalized == view.to_json(include_notes=False)
    decision = decide(version, _stored_version(stored), same=same)
    if decision is Decision.FETCH:
        raise _NeedsLoop
    if decision is not Decision.APPLY:
        return _NOT_APPLIED[decision]
    written = await db.write_return(
        session,
        raw,
        view,
        version_source=None if version is None or version.exact else version.source.value,
        version_rank=version.rank if version else 0,
    )
    return "applied" if written else "stale"


def _written_at(
    view: LoopReturn, version: Version | None, stored: db.StoredReturn | None
) -> datetime:
    """The `updated_at` to store: Loop's own when sent; else the latest of what is
    stored and the event's lower bound, so it never moves backwards."""
    if version is not None and version.exact:
        return version.at
    candidates = [view.updated]
    if version is not None:
        candidates.append(version.at)
    if stored is not None:
        candidates.append(stored.updated_at)
    return max(candidates)


async def _store_read(
    session: AsyncSession, return_id: str, stored: db.StoredReturn | None, fetched: Any
) -> Result:
    """Store what Loop says now, unless our copy is newer than Loop's answer."""
    if not isinstance(fetched, dict):
        raise InvalidUpstreamData("Loop's return details are not an object")
    if return_id_of(fetched.get("id")) != return_id:
        raise InvalidUpstreamData("Loop's return details are of another return")
    check_return(fetched)
    view = normalize_return(fetched)
    if stored is not None:
        if view.updated < stored.updated_at:
            return "unchanged"
        if stored.normalized == view.to_json(include_notes=False):
            return "unchanged"
    written = await db.write_return(session, fetched, view, version_source=None, version_rank=0)
    return "applied" if written else "unchanged"


def _stored_version(stored: db.StoredReturn | None) -> Version | None:
    if stored is None:
        return None
    source = Source(stored.version_source) if stored.version_source else Source.UPDATED_AT
    return Version(stored.updated_at, source, stored.version_rank)


def _newer_label(stored_raw: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    """A return event older than the stored label keeps the stored label fields."""
    stored_at = _label_at(stored_raw)
    incoming = label_time(raw)
    if stored_at is None or (incoming is not None and incoming >= stored_at):
        return raw
    return {**raw, **{k: stored_raw[k] for k in LABEL_FIELDS if k in stored_raw}}


# --- label events -----------------------------------------------------------------


async def _apply_label(
    session: AsyncSession,
    event: WebhookEvent,
    fetched: Any,
    known: dict[str, db.StoredReturn | None] | None = None,
) -> Result:
    """Label fields onto the stored return; a return the store does not hold yet is
    read from Loop first, so the event is never dropped."""
    return_id = _id(event)
    await db.lock_return(session, return_id)
    stored = await _stored_now(session, return_id, known)
    read: Result = "unchanged"
    if fetched is not None:
        read = await _store_read(session, return_id, stored, fetched)
        stored = await db.stored_return(session, return_id)
    if stored is None:
        raise _NeedsLoop
    fields = {k: event.payload[k] for k in LABEL_FIELDS if k in event.payload}
    merged = {**stored.raw, **fields}
    view = _at(normalize_return(merged), stored.updated_at)
    same = stored.normalized == view.to_json(include_notes=False)
    incoming = event.version.at if event.version else None
    decision = decide_label(incoming, _label_at(stored.raw), same=same)
    if decision is Decision.FETCH:
        if fetched is not None:  # Loop's answer is what the return is now
            return read
        raise _NeedsLoop
    if decision is not Decision.APPLY:
        return "applied" if read == "applied" else _NOT_APPLIED[decision]
    await db.write_return(
        session,
        merged,
        view,
        version_source=stored.version_source,
        version_rank=stored.version_rank,
    )
    return "applied"


def _label_at(raw: dict[str, Any]) -> datetime | None:
    try:
        return timestamp(raw.get("label_updated_at"), "label_updated_at")
    except InvalidInput:
        return None  # a bad stored value orders nothing


def _id(event: WebhookEvent) -> str:
    if event.return_id is None:
        raise InvalidInput(f"webhook `{event.topic}` event names no return")
    return event.return_id


def _at(view: LoopReturn, moment: datetime) -> LoopReturn:
    """The view with `updatedAt` at `moment` (as Loop wrote it when it is that time)."""
    if view.updated == moment:
        return view
    return view.model_copy(update={"updatedAt": moment.isoformat()})
