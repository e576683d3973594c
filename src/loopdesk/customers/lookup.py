"""One customer's returns and orders, fetched from Loop as fast as the data allows.

Requests that do not depend on each other run together: one returns list per address
and the Order Tracking query start at once, and each return's notes request starts as
soon as that return is known (not after every list has arrived). The clients bound
concurrency and rate. A failed request is reported in `meta.errors`; it never loses
what the other requests brought.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, Protocol

import structlog

from loopdesk.customers.profile import profile_emails
from loopdesk.customers.view import CustomerView, IssueSource, LookupIssue, LookupMeta
from loopdesk.domain.models import LoopReturn, Note, Order
from loopdesk.domain.normalize import normalize_notes, normalize_orders, normalize_returns
from loopdesk.errors import LoopdeskError
from loopdesk.settings import Settings

log = structlog.get_logger(__name__)


class ReturnsSource(Protocol):
    async def list_returns(self, customer_email: str, *, since: date, limit: int) -> Any: ...
    async def list_notes(self, return_id: str) -> list[Any]: ...


class OrdersSource(Protocol):
    async def orders_for_emails(self, emails: list[str]) -> Any: ...


@dataclass(frozen=True)
class LookupOptions:
    max_emails: int = 5
    returns_per_email: int = 10
    returns_days: int = 365
    max_orders: int = 10

    @classmethod
    def from_settings(cls, settings: Settings) -> LookupOptions:
        return cls(
            max_emails=settings.lookup_max_emails,
            returns_per_email=settings.lookup_returns_per_email,
            returns_days=settings.lookup_returns_days,
            max_orders=settings.lookup_max_orders,
        )


@dataclass
class _Gather:
    """Mutable state of one lookup while its requests are in flight."""

    emails: list[str]
    since: datetime
    returns: dict[str, LoopReturn] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, list[Note]] = field(default_factory=dict)
    orders: list[Order] = field(default_factory=list)
    issues: list[LookupIssue] = field(default_factory=list)


async def lookup_customer(
    emails: list[str],
    returns_source: ReturnsSource,
    orders_source: OrdersSource | None,
    options: LookupOptions | None = None,
    *,
    source: Literal["loop", "sandbox"] = "loop",
    now: datetime | None = None,
    raw_sink: dict[str, Any] | None = None,
    requests_sent: asyncio.Event | None = None,
) -> CustomerView:
    """Fetch a customer's view from Loop. `raw_sink`, when given, receives each kept
    return's raw upstream object by id (what the store keeps beside the view).
    `requests_sent` is set once the first upstream requests are on their way: work
    beside the lookup waits for it, so its CPU falls in the wait for Loop instead of
    delaying those requests."""
    options = options or LookupOptions()
    now = now or datetime.now(UTC)
    addresses = profile_emails(emails, limit=options.max_emails)
    state = _Gather(emails=addresses, since=now - timedelta(days=options.returns_days))

    async with asyncio.TaskGroup() as tasks:
        # Tasks start in the order made: the returns lists first, as the notes requests
        # wait on them (the answer's critical path); the orders need one round trip.
        for email in addresses:
            tasks.create_task(_fetch_returns(state, returns_source, options, email, tasks))
        if orders_source is not None and options.max_orders > 0:
            tasks.create_task(_fetch_orders(state, orders_source, options))
        if requests_sent is not None:
            # Set on the loop's next turn, after each task's first steps send their
            # requests (set now, its waiters would run first; the test says so).
            asyncio.get_running_loop().call_soon(requests_sent.set)

    returns = sorted(
        (r.with_notes(state.notes.get(r.id, [])) for r in state.returns.values()),
        key=lambda r: (r.updated, r.id),
        reverse=True,
    )
    if raw_sink is not None:
        raw_sink.update(state.raw)
    stamp = now.isoformat()
    meta = LookupMeta(
        emails=addresses, source=source, fetchedAt=stamp, asOf=stamp, errors=state.issues
    )
    return CustomerView(returns=returns, orders=state.orders, meta=meta)


async def _fetch_returns(
    state: _Gather,
    client: ReturnsSource,
    options: LookupOptions,
    email: str,
    tasks: asyncio.TaskGroup,
) -> None:
    try:
        body = await client.list_returns(
            email, since=state.since.date(), limit=options.returns_per_email
        )
        result = normalize_returns(body, state.emails)
    except Exception as exc:  # reported, never raised: other addresses keep their data
        state.issues.append(_issue("returns", exc, email=email))
        return
    blanked: dict[str, list[LookupIssue]] = {}
    for problem in result.problems:
        field_name = problem.details.get("field")
        if field_name is None:  # a record that could not be shown at all
            state.issues.append(_issue("returns", problem, email=email))
            continue
        return_id = str(problem.details.get("returnId"))
        issue = _issue("fields", problem, return_id=return_id, field=str(field_name))
        blanked.setdefault(return_id, []).append(issue)
    # The same bounds the store applies: within the window, newest first, at most
    # `returns_per_email` for this address, whatever the upstream sent.
    kept = sorted(
        (
            pair
            for pair in zip(result.items, result.sources, strict=True)
            if pair[0].updated >= state.since
        ),
        key=lambda pair: (pair[0].updated, pair[0].id),
        reverse=True,
    )[: options.returns_per_email]
    for item, raw in kept:
        known = state.returns.get(item.id)
        if known is None:
            tasks.create_task(_fetch_notes(state, client, item.id))
            # Shown with a field blank: say which (once, however many lists hold it).
            state.issues.extend(blanked.get(item.id, []))
        if known is None or item.updated > known.updated:
            state.returns[item.id] = item
            state.raw[item.id] = raw


async def _fetch_notes(state: _Gather, client: ReturnsSource, return_id: str) -> None:
    try:
        result = normalize_notes(await client.list_notes(return_id), return_id)
    except Exception as exc:
        state.issues.append(_issue("notes", exc, return_id=return_id))
        return
    state.issues.extend(_issue("notes", p, return_id=return_id) for p in result.problems)
    state.notes[return_id] = result.items


async def _fetch_orders(state: _Gather, client: OrdersSource, options: LookupOptions) -> None:
    try:
        result = normalize_orders(
            await client.orders_for_emails(state.emails), limit=options.max_orders
        )
    except Exception as exc:
        state.issues.append(_issue("orders", exc))
        return
    state.issues.extend(_issue("orders", p) for p in result.problems)
    state.orders = result.items


def _issue(
    source: IssueSource,
    exc: BaseException,
    *,
    email: str | None = None,
    return_id: str | None = None,
    field: str | None = None,
) -> LookupIssue:
    if isinstance(exc, LoopdeskError):
        code, message = exc.code, exc.message
    else:  # a defect, not an upstream failure: logged in full, reported plainly
        log.exception("lookup.unexpected_error", source=source)
        code, message = LoopdeskError.code, f"unexpected error: {type(exc).__name__}"
    return LookupIssue(
        source=source, code=code, message=message, email=email, returnId=return_id, field=field
    )
