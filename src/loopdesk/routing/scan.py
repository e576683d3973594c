"""The routing scan: facts that change by time alone (days pending), from the store.

No upstream call: every customer with a last outcome, and every address with an open
return in the store that no such customer holds, is re-routed at `now` (a test passes
a frozen one). The periodic task of `serve` runs it every
`LOOPDESK_ROUTING_SCAN_INTERVAL_S` and sends the outbox between scans.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from loopdesk.routing.outbox import Sender
from loopdesk.routing.reroute import Change, Rerouter
from loopdesk.store import outbox as ob

log = structlog.get_logger(__name__)

PAGE = 200
# How long the sender sleeps at most: rows written by other processes (the CLI, other
# workers) are sent within this, rows written here at once.
POLL_S = 5.0


@dataclass(frozen=True)
class Scanned:
    customers: int
    changes: list[Change]


async def scan(rerouter: Rerouter, *, now: datetime | None = None) -> Scanned:
    moment = now or datetime.now(UTC)
    visited = 0
    changes: list[Change] = []
    covered: set[str] = set()
    after = ""
    while True:
        async with rerouter.store.reader() as session:
            page = await ob.outcomes_page(session, after=after, limit=PAGE)
        if not page:
            break
        for row in page:
            after = row.customer
            covered.update(row.emails)
            visited += 1
            change = await rerouter.reroute(row.emails, cause="scan", now=moment)
            if change is not None:
                changes.append(change)
    after = ""
    while True:
        async with rerouter.store.reader() as session:
            emails = await ob.open_return_emails(session, after=after, limit=PAGE)
        if not emails:
            break
        for email in emails:
            after = email
            if email in covered:
                continue
            visited += 1
            change = await rerouter.reroute([email], cause="scan", now=moment)
            if change is not None:
                changes.append(change)
    return Scanned(visited, changes)


async def run_periodic(rerouter: Rerouter, sender: Sender, *, interval_s: float) -> None:
    """Until cancelled: send what is due (at once at start-up: rows a restart left),
    scan every `interval_s` (0: never), and wake when an event is written."""
    next_scan = time.monotonic()
    while True:
        rerouter.written.clear()
        await _safely("deliver", sender.deliver_due())
        if interval_s > 0 and time.monotonic() >= next_scan:
            await _safely("scan", scan(rerouter))
            await _safely("prune", sender.prune())
            next_scan = time.monotonic() + interval_s
            continue  # send what the scan wrote
        wait = POLL_S
        if interval_s > 0:
            wait = min(wait, next_scan - time.monotonic())
        try:
            due = await sender.next_due()
        except Exception:
            due = None  # the database is down: poll again
        if due is not None:
            wait = min(wait, (due - datetime.now(UTC)).total_seconds())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rerouter.written.wait(), max(wait, 0.01))


async def _safely(step: str, work: Awaitable[object]) -> None:
    try:
        await work
    except Exception as exc:  # the next round tries again
        log.warning("routing.periodic_failed", step=step, error=type(exc).__name__)
