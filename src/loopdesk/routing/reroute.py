"""Proactive re-routing: when a customer's stored facts change their routing outcome,
a `routing.changed` event is written to the outbox, once per change.

What is compared is a customer's *standing* outcome: the rules over the facts the
store holds for their addresses, with no message (channel and intent empty) and no
help-desk attributes (a VIP is known only by the policy file's addresses here), so
every path (webhook, refresh, scan) computes it the same way and a message's own
channel or intent never reads as a change. The outcome is queue, priority, rule and
tags; facts that change without changing it (one more day pending) announce nothing.

Each customer's last outcome is kept (`routing_outcomes`). The first outcome of a
customer is recorded without an event (nothing changed from anything known); then
each change is recorded and announced in one transaction, under a per-customer lock,
so two processes seeing the same change announce it once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from loopdesk import store as db
from loopdesk.customers.lookup import LookupOptions
from loopdesk.domain.facts import Customer, Facts, facts
from loopdesk.routing.decide import Decision, decide
from loopdesk.routing.events import EVENT_TYPE, encode
from loopdesk.routing.service import RoutingConfig
from loopdesk.store import outbox as ob

log = structlog.get_logger(__name__)

Cause = Literal["webhook", "refresh", "scan"]


@dataclass(frozen=True)
class Outcome:
    """What a change is judged on."""

    queue: str
    priority: int
    rule: str
    tags: tuple[str, ...]

    @classmethod
    def of(cls, decision: Decision) -> Outcome:
        o = decision.outcome
        return cls(o.queue, o.priority, decision.rule, tuple(o.tags))

    @classmethod
    def stored(cls, row: ob.OutcomeRow) -> Outcome:
        return cls(row.queue, row.priority, row.rule, tuple(row.tags))

    def to_json(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "priority": self.priority,
            "rule": self.rule,
            "tags": list(self.tags),
        }


@dataclass(frozen=True)
class Change:
    """One announced change: the body of its `routing.changed` event."""

    id: str
    at: datetime
    emails: list[str]
    old: Outcome
    new: Outcome
    facts: Facts
    cause: Cause

    def to_json(self) -> dict[str, Any]:
        return {
            "type": EVENT_TYPE,
            "id": self.id,
            "at": self.at.isoformat(),
            "customer": {"emails": self.emails},
            "old": self.old.to_json(),
            "new": self.new.to_json(),
            "rule": self.new.rule,
            "facts": self.facts.to_json(),
            "cause": self.cause,
        }


class Rerouter:
    def __init__(self, config: RoutingConfig, store: db.Store, options: LookupOptions) -> None:
        self.config = config
        self.store = store
        self.options = options
        # Set when an event is written, so the sender does not wait for its next poll.
        self.written = asyncio.Event()
        # Told of each change once it is committed (Gladly re-routing); must not block.
        self.listeners: list[Callable[[Change], None]] = []

    async def reroute(
        self, emails: Sequence[str], *, cause: Cause, now: datetime | None = None
    ) -> Change | None:
        """Recompute one customer's standing outcome from the store; the change it
        announces, if any."""
        addresses = ob.customer_emails(emails)
        if not addresses:
            return None
        moment = now or datetime.now(UTC)
        key = ob.customer_key(addresses)
        # Most calls change nothing: find that out without taking SQLite's write lock.
        async with self.store.reader() as session:
            if await self._unchanged(session, key, addresses, moment):
                return None
        async with self.store.session() as session:
            await ob.lock_customer(session, key)
            customer_facts = await self._facts(session, addresses, moment)
            last = await ob.get_outcome(session, key)
            change = await self._record(session, addresses, customer_facts, last, cause, moment)
        if change is not None:
            self._announced(change)
        return change

    async def return_applied(self, return_id: str) -> None:
        """A webhook changed a stored return: re-route the customers holding its
        address (those with a last outcome; else the address alone). Never raises: the
        event is applied, and the next scan catches what this could not do."""
        try:
            await self.for_return(return_id, cause="webhook")
        except Exception as exc:
            log.warning("routing.reroute_failed", cause="webhook", error=type(exc).__name__)

    async def returns_applied(self, return_ids: Sequence[str]) -> None:
        """Webhooks changed these stored returns: each customer holding one of their
        addresses is re-routed once, however many of the returns are theirs. Never
        raises (as `return_applied`)."""
        try:
            await self.for_returns(return_ids, cause="webhook")
        except Exception as exc:
            log.warning("routing.reroute_failed", cause="webhook", error=type(exc).__name__)

    async def for_returns(
        self, return_ids: Sequence[str], *, cause: Cause, now: datetime | None = None
    ) -> list[Change]:
        async with self.store.reader() as session:
            emails = await db.emails_of_returns(session, return_ids)
            known = await ob.customers_with_emails(session, emails.values())
            groups: list[list[str]] = []
            for email in sorted(set(emails.values())):
                rows = known.get(db.normalize_email(email), [])
                groups.extend([row.emails for row in rows] or [[email]])
        # After webhooks: nobody waits for it (see `Store.session`).
        return await self.reroute_many(groups, cause=cause, now=now, background=True)

    async def reroute_many(
        self,
        customers: Sequence[Sequence[str]],
        *,
        cause: Cause,
        now: datetime | None = None,
        background: bool = False,
    ) -> list[Change]:
        """`reroute` of many customers, each once, with their facts read together: one
        read-only transaction finds those whose outcome changed, then one transaction
        (customers locked in key order) records and announces the changes."""
        moment = now or datetime.now(UTC)
        groups: dict[str, list[str]] = {}
        for emails in customers:
            addresses = ob.customer_emails(emails)
            if addresses:
                groups.setdefault(ob.customer_key(addresses), addresses)
        if not groups:
            return []
        async with self.store.reader() as session:
            last = await ob.get_outcomes(session, groups)
            found = await self._facts_of(session, groups, moment)
        todo = sorted(
            key
            for key in groups
            if key not in last
            or Outcome.stored(last[key]) != Outcome.of(decide(self.config.rules, found[key]))
        )
        if not todo:
            return []
        changes: list[Change] = []
        async with self.store.session(background=background) as session:
            for key in todo:
                await ob.lock_customer(session, key)
            wanted = {key: groups[key] for key in todo}
            last = await ob.get_outcomes(session, wanted)
            found = await self._facts_of(session, wanted, moment)
            saves = []
            for key, addresses in wanted.items():
                new = Outcome.of(decide(self.config.rules, found[key]))
                prev = last.get(key)
                if prev is not None and Outcome.stored(prev) == new:
                    continue
                saves.append(_saved(addresses, new, found[key], moment))
                if prev is not None:  # else a first outcome: the baseline, not a change
                    change = _change(addresses, prev, new, found[key], cause, moment)
                    await self._enqueue(session, change)
                    changes.append(change)
            await ob.save_outcomes(session, saves)
        for change in changes:
            self._announced(change)
        return changes

    async def _record(
        self,
        session: AsyncSession,
        addresses: list[str],
        customer_facts: Facts,
        last: ob.OutcomeRow | None,
        cause: Cause,
        moment: datetime,
    ) -> Change | None:
        """Save a customer's new outcome (in the caller's transaction, the customer
        locked); the change to announce, None when nothing changed or it is the first."""
        new = Outcome.of(decide(self.config.rules, customer_facts))
        if last is not None and Outcome.stored(last) == new:
            return None
        await ob.save_outcomes(session, [_saved(addresses, new, customer_facts, moment)])
        if last is None:
            return None  # a first outcome: the baseline, not a change
        change = _change(addresses, last, new, customer_facts, cause, moment)
        await self._enqueue(session, change)
        return change

    async def _enqueue(self, session: AsyncSession, change: Change) -> None:
        urls = self.config.events.urls
        if urls:
            body = encode(change.to_json())
            await ob.enqueue(session, event_id=change.id, urls=urls, body=body, at=change.at)

    def _announced(self, change: Change) -> None:
        """After the commit: logged, the sender woken, the listeners told."""
        log.info(
            "routing.changed",
            event_id=change.id,
            cause=change.cause,
            old=change.old.queue,
            new=change.new.queue,
            rule=change.new.rule,
        )
        if self.config.events.urls:
            self.written.set()
        for listener in self.listeners:
            listener(change)

    async def _facts_of(
        self, session: AsyncSession, groups: dict[str, list[str]], now: datetime
    ) -> dict[str, Facts]:
        """`_facts` of many customers (key: addresses), from three queries in all."""
        every = sorted({address for addresses in groups.values() for address in addresses})
        returns = await db.returns_for_emails(
            session,
            every,
            since=now - timedelta(days=self.options.returns_days),
            limit_per_email=self.options.returns_per_email,
        )
        by_email: dict[str, list[Any]] = {}
        for item in returns:
            by_email.setdefault(db.normalize_email(item.customerEmail), []).append(item)
        orders = await db.stored_orders_of(session, [a[0] for a in groups.values()])
        granted = await db.granted_by_email(session, every)
        found = {}
        for key, addresses in groups.items():
            theirs = [item for address in addresses for item in by_email.get(address, [])]
            theirs.sort(key=lambda item: (item.updated, item.id), reverse=True)
            found[key] = facts(
                theirs,
                orders.get(addresses[0], [])[: self.options.max_orders],
                now,
                self.config.policy,
                customer=Customer(emails=tuple(addresses)),
                exceptions_granted=len(
                    set().union(*(granted.get(address, set()) for address in addresses))
                ),
            )
        return found

    async def for_return(
        self, return_id: str, *, cause: Cause, now: datetime | None = None
    ) -> list[Change]:
        async with self.store.reader() as session:
            found = await db.get_return(session, return_id)
            if found is None:
                return []
            email = found[1].customerEmail
            known = await ob.customers_with_email(session, email)
        groups = [row.emails for row in known] or [[email]]
        changes = []
        for emails in groups:
            change = await self.reroute(emails, cause=cause, now=now)
            if change is not None:
                changes.append(change)
        return changes

    async def refreshed(self, emails: list[str]) -> None:
        """A lookup fetched these addresses from Loop and stored the answer. Never
        raises: the lookup has its answer either way."""
        try:
            await self.reroute(emails, cause="refresh")
        except Exception as exc:
            log.warning("routing.reroute_failed", cause="refresh", error=type(exc).__name__)

    async def _unchanged(
        self, session: AsyncSession, key: str, addresses: list[str], now: datetime
    ) -> bool:
        last = await ob.get_outcome(session, key)
        if last is None:
            return False
        customer_facts = await self._facts(session, addresses, now)
        return Outcome.stored(last) == Outcome.of(decide(self.config.rules, customer_facts))

    async def _facts(self, session: AsyncSession, addresses: list[str], now: datetime) -> Facts:
        """The customer's facts from the store alone, with the lookup's bounds (as a
        store-served lookup would show them)."""
        returns = await db.returns_for_emails(
            session,
            addresses,
            since=now - timedelta(days=self.options.returns_days),
            limit_per_email=self.options.returns_per_email,
        )
        orders = (await db.stored_orders(session, addresses))[: self.options.max_orders]
        return facts(
            returns,
            orders,
            now,
            self.config.policy,
            customer=Customer(emails=tuple(addresses)),
            exceptions_granted=await db.count_granted(session, addresses),
        )


def _saved(addresses: list[str], new: Outcome, found: Facts, moment: datetime) -> dict[str, Any]:
    """A customer's new last outcome, as `outbox.save_outcomes` takes it."""
    return {
        "emails": addresses,
        "queue": new.queue,
        "priority": new.priority,
        "rule": new.rule,
        "tags": new.tags,
        "facts": found.to_json(),
        "at": moment,
    }


def _change(
    addresses: list[str],
    last: ob.OutcomeRow,
    new: Outcome,
    found: Facts,
    cause: Cause,
    at: datetime,
) -> Change:
    return Change(
        id=uuid.uuid4().hex,
        at=at,
        emails=addresses,
        old=Outcome.stored(last),
        new=new,
        facts=found,
        cause=cause,
    )
