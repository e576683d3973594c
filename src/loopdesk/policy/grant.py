"""A return-window exception end to end: the order's delivery from Order Tracking, the
decision under the merchant's policy, the ledger, and the allowlist entry in Loop.

`ExceptionDesk.request` records every decision. An eligible one claims the order's
grant in the ledger first (a row `pending` with the order's unique grant key, under a
per-customer lock so "once per period" holds too), then asks Loop for the allowlist
entry through the audited `ActionRunner`, then settles the row: `granted` with the
entry's id, or `failed` with the key released when Loop surely did not make it. When
Loop's outcome is unknown the row stays `pending`, so the order is never allowlisted
twice; a person checks Loop's allowlist. A second request for a granted order gets
that grant back (`already_granted`); one that finds the grant still pending waits for
it briefly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from loopdesk import store as db
from loopdesk.actions.run import ActionRunner
from loopdesk.customers.order_details import order_details
from loopdesk.domain.shipments import TrackedOrder, delivered_at, delivery, order_key
from loopdesk.errors import InvalidInput
from loopdesk.loop.tracking import OrderTrackingClient
from loopdesk.policy.exceptions import ExceptionDecision, exception_decision
from loopdesk.policy.file import Policy
from loopdesk.store.exceptions import FAILED, PENDING

log = structlog.get_logger(__name__)

# Decisions per request: a claim lost to another request, or a grant that failed while
# this one waited, is decided again from the ledger (the last attempt always answers).
ATTEMPTS = 3


@dataclass(frozen=True)
class ExceptionResult:
    """What the request came to. `granted`: the order is allowlisted now (by this
    request, or earlier: `already_granted`). `upstream_failed`: Loop refused or failed
    (`error` holds its error); with `outcome_unknown` it may still have made the entry.
    `pending`: another request's grant has not settled yet."""

    decision: ExceptionDecision
    entry_id: int | None  # this request's ledger row
    allowlist_id: str | None
    already_granted: bool = False
    granted: bool = False
    upstream_failed: bool = False
    outcome_unknown: bool = False
    pending: bool = False
    grant_entry_id: int | None = None  # the row that holds the order's grant
    order: TrackedOrder | None = None
    error: dict[str, Any] | None = None

    @property
    def outcome(self) -> str:
        return self.decision.outcome

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision.to_json(),
            "entryId": self.entry_id,
            "allowlistId": self.allowlist_id,
            "alreadyGranted": self.already_granted,
            "granted": self.granted,
            "upstreamFailed": self.upstream_failed,
            "outcomeUnknown": self.outcome_unknown,
            "pending": self.pending,
            "grantEntryId": self.grant_entry_id,
            "error": self.error,
        }


class ExceptionDesk:
    def __init__(
        self,
        store: db.Store,
        tracking: OrderTrackingClient | None,
        actions: ActionRunner,
        policy: Policy,
        *,
        settle_wait_s: float = 15.0,
        poll_s: float = 0.05,
    ) -> None:
        self.store = store
        self.tracking = tracking
        self.actions = actions
        self.policy = policy
        self.settle_wait_s = settle_wait_s
        self.poll_s = poll_s

    async def request(
        self,
        *,
        emails: list[str],
        vip: bool,
        order_name: str,
        conversation_id: str | None,
        key_name: str,
        now: datetime | None = None,
    ) -> ExceptionResult:
        """Decide, record and (when eligible) grant an exception for `order_name`.

        Raises what `order_details` raises (Order Tracking not configured, Loop
        unavailable ...) before anything is recorded: then nothing was decided."""
        if not any(e.strip() for e in emails):
            raise InvalidInput("an exception is for a customer: give their email addresses")
        moment = now or datetime.now(UTC)
        order = await order_details(self.tracking, order_name)
        name = order.name if order is not None else order_name.strip()
        key = order_key(name)
        for attempt in range(ATTEMPTS):
            last = attempt == ATTEMPTS - 1
            async with self.store.reader() as session:
                grant = await db.grant_for_order(session, key)
                used = await db.customer_grants(session, emails, since=self._period_start(moment))
            decision = self._decide(name, order, moment, vip, used, grant)
            result: ExceptionResult | None = None
            if decision.outcome == "eligible":
                result = await self._grant(
                    emails, vip, name, order, decision, conversation_id, key_name, last=last
                )
            elif decision.outcome == "already_granted" and grant is not None:
                result = await self._already(
                    emails, order, decision, grant, conversation_id, key_name, last=last
                )
            else:
                entry_id = await self._record(emails, order, decision, conversation_id, key_name)
                result = ExceptionResult(decision, entry_id, None, order=order)
            if result is not None:
                return result
            # Another request claimed the order first, or its grant failed and let the
            # key go: read the ledger again and decide anew.
        # Other requests' grants kept failing under this one: it answers as they did.
        entry_id = await self._record(
            emails, order, decision, conversation_id, key_name, outcome=FAILED
        )
        return ExceptionResult(decision, entry_id, None, upstream_failed=True, order=order)

    # --- the steps ---------------------------------------------------------------

    def _period_start(self, now: datetime) -> datetime | None:
        days = self.policy.exceptions.once_per_days
        return now - timedelta(days=days) if days else None

    def _decide(
        self,
        name: str,
        order: TrackedOrder | None,
        now: datetime,
        vip: bool,
        used: Sequence[db.ExceptionRow],
        grant: db.ExceptionRow | None,
    ) -> ExceptionDecision:
        return exception_decision(
            order_name=name,
            delivered_at=delivered_at(order),
            now=now,
            vip=vip,
            order_items=order.items if order is not None else [],
            customer_grants=[g for g in used if g.order_key != order_key(name)],
            order_grant=grant,
            policy=self.policy,
            delivery=delivery(order),
        )

    async def _grant(
        self,
        emails: list[str],
        vip: bool,
        name: str,
        order: TrackedOrder | None,
        decision: ExceptionDecision,
        conversation_id: str | None,
        key_name: str,
        *,
        last: bool,
    ) -> ExceptionResult | None:
        """Claim, call Loop, settle; None when the claim went to another request whose
        grant then failed (the caller decides again)."""
        key = order_key(name)
        async with self.store.session() as session:
            # Under the customer's lock, the ledger is read again: a grant made since
            # the first read (this order, or another within the period) decides.
            await db.lock_exception_customer(session, emails)
            grant = await db.grant_for_order(session, key)
            used = await db.customer_grants(
                session, emails, since=self._period_start(decision.decided_at)
            )
            decision = self._decide(name, order, decision.decided_at, vip, used, grant)
            entry_id = None
            if decision.outcome == "eligible":
                entry_id = await db.record_exception(
                    session,
                    **self._row(emails, order, decision, conversation_id, key_name),
                    outcome=PENDING,
                    grant_key=key,
                )
        if entry_id is None:
            if decision.outcome not in ("eligible", "already_granted"):
                # Another of the customer's orders was granted meanwhile (the period).
                recorded = await self._record(emails, order, decision, conversation_id, key_name)
                return ExceptionResult(decision, recorded, None, order=order)
            if grant is None:  # the insert met a claim this transaction could not see
                async with self.store.reader() as session:
                    grant = await db.grant_for_order(session, key)
            if grant is None:
                return None
            decision = self._decide(name, order, decision.decided_at, vip, [], grant)
            return await self._already(
                emails, order, decision, grant, conversation_id, key_name, last=last
            )
        # Claimed: the call to Loop and the settling run to the end even if this request
        # is cancelled (a client gone), so the claim is never left pending for nothing.
        return await asyncio.shield(self._allowlist(entry_id, name, order, decision, key_name))

    async def _allowlist(
        self,
        entry_id: int,
        name: str,
        order: TrackedOrder | None,
        decision: ExceptionDecision,
        key_name: str,
    ) -> ExceptionResult:
        try:
            outcome = await self.actions.allowlist_add("order", name, key_name=key_name)
        except BaseException:
            # Our own failure before or while calling Loop: the row stays pending (the
            # key held), as the outcome at Loop is unknown.
            log.exception("exceptions.grant_failed", entry_id=entry_id)
            raise
        settled = datetime.now(UTC)
        if outcome.ok:
            allowlist_id = str(outcome.body.get("id", ""))
            async with self.store.session() as session:
                await db.settle_grant(session, entry_id, allowlist_id=allowlist_id, at=settled)
            log.info("exceptions.granted", entry_id=entry_id, allowlist_id=allowlist_id)
            return ExceptionResult(
                decision,
                entry_id,
                allowlist_id,
                granted=True,
                grant_entry_id=entry_id,
                order=order,
            )
        error = outcome.body.get("error", {})
        unknown = outcome.applied_or_unknown
        async with self.store.session() as session:
            if unknown:
                await db.note_unsettled(session, entry_id, error=error, at=settled)
            else:
                await db.fail_grant(session, entry_id, error=error, at=settled)
        log.warning(
            "exceptions.allowlist_failed",
            entry_id=entry_id,
            code=error.get("code"),
            outcome_unknown=unknown,
        )
        return ExceptionResult(
            decision,
            entry_id,
            None,
            upstream_failed=True,
            outcome_unknown=unknown,
            pending=unknown,
            grant_entry_id=entry_id if unknown else None,
            order=order,
            error=error,
        )

    async def _already(
        self,
        emails: list[str],
        order: TrackedOrder | None,
        decision: ExceptionDecision,
        grant: db.ExceptionRow,
        conversation_id: str | None,
        key_name: str,
        *,
        last: bool,
    ) -> ExceptionResult | None:
        """This order's grant exists: its answer once it has settled; None when it
        failed meanwhile (its key is free: the caller decides again)."""
        held: db.ExceptionRow | None = grant
        deadline = time.monotonic() + self.settle_wait_s
        while held is not None and held.outcome == PENDING and time.monotonic() < deadline:
            await asyncio.sleep(self.poll_s)
            async with self.store.reader() as session:
                held = await db.get_exception(session, grant.id)
        if held is None or held.outcome == FAILED:
            if not last:
                return None
            error = held.details.get("upstreamError") if held is not None else None
            entry_id = await self._record(
                emails, order, decision, conversation_id, key_name, outcome=FAILED
            )
            return ExceptionResult(
                decision, entry_id, None, upstream_failed=True, order=order, error=error
            )
        pending = held.outcome == PENDING
        entry_id = await self._record(
            emails,
            order,
            decision,
            conversation_id,
            key_name,
            allowlist_id=held.allowlist_id,
            extra={"grantEntryId": held.id},
        )
        return ExceptionResult(
            decision,
            entry_id,
            held.allowlist_id,
            already_granted=True,
            granted=not pending,
            pending=pending,
            grant_entry_id=held.id,
            order=order,
        )

    # --- the ledger --------------------------------------------------------------

    def _row(
        self,
        emails: list[str],
        order: TrackedOrder | None,
        decision: ExceptionDecision,
        conversation_id: str | None,
        key_name: str,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        details = {
            "windowClosedOn": _day(decision.window_closed_on),
            "graceEndsOn": _day(decision.grace_ends_on),
            "graceDays": decision.grace_days,
            "rule": decision.rule,
            "finalSaleItems": [i.to_json() for i in decision.final_sale_items],
            "items": [i.to_json() for i in order.items] if order is not None else [],
            "orderFound": order is not None,
            **(extra or {}),
        }
        return {
            "decided_at": decision.decided_at,
            "emails": emails,
            "order_name": decision.order_name,
            "order_key": order_key(decision.order_name),
            "criteria": [c.to_json() for c in decision.criteria],
            "reason": decision.reason,
            "details": details,
            "vip": decision.vip,
            "delivered_at": decision.delivered_at,
            "key_name": key_name,
            "conversation_id": conversation_id,
        }

    async def _record(
        self,
        emails: list[str],
        order: TrackedOrder | None,
        decision: ExceptionDecision,
        conversation_id: str | None,
        key_name: str,
        *,
        outcome: str | None = None,
        allowlist_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> int:
        async with self.store.session() as session:
            entry_id = await db.record_exception(
                session,
                **self._row(emails, order, decision, conversation_id, key_name, extra),
                outcome=outcome or decision.outcome,
                allowlist_id=allowlist_id,
            )
        assert entry_id is not None  # no grant key: nothing to conflict with
        return entry_id

    async def granted_count(self, emails: Sequence[str]) -> int:
        """How many exceptions this customer was granted (the `exceptions_granted` fact)."""
        async with self.store.reader() as session:
            return await db.count_granted(session, emails)


def _day(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
