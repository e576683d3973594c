"""Delivering the outbox: each pending row POSTed, signed, until its URL answers 2xx.

A row is claimed before it is sent (its next attempt moves past the attempt's time
limit, `store.outbox.claim_delivery`), so among the processes sharing a database one
sends it; a process that dies mid-send leaves the row due again after that limit. A
failure (no answer, a non-2xx) schedules the next attempt with exponential backoff and
jitter (`events.backoff_s`), kept in the row; rows are retried until delivered, across
restarts. A receiver may see an event twice (its answer lost): the event id says so.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from random import Random

import httpx
import structlog

from loopdesk import store as db
from loopdesk.routing.events import EventsConfig, backoff_s, headers
from loopdesk.store import outbox as ob

log = structlog.get_logger(__name__)

BATCH = 100
CONCURRENCY = 8
# Beyond the request's own time limit, before a claimed row is due again.
LEASE_MARGIN_S = 30.0
# Delivered rows are kept this long (what was sent, when), then forgotten.
KEEP_DELIVERED = timedelta(days=30)


@dataclass(frozen=True)
class Delivered:
    """One pass over the due rows."""

    sent: int = 0
    failed: int = 0


class Sender:
    def __init__(
        self,
        store: db.Store,
        events: EventsConfig,
        *,
        client: httpx.AsyncClient | None = None,
        rng: Random | None = None,
    ) -> None:
        self.store = store
        self.events = events
        self._client = client
        self._owns_client = client is None
        self.rng = rng or Random()  # noqa: S311 - jitter, not a secret

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.events.timeout_s, follow_redirects=False)
        return self._client

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def deliver_due(self, now: datetime | None = None) -> Delivered:
        """One attempt for every row due at `now` (default: the clock)."""
        moment = now or datetime.now(UTC)
        async with self.store.reader() as session:
            rows = await ob.due_deliveries(session, moment, limit=BATCH)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(row: ob.OutboxRow) -> bool | None:
            async with gate:
                return await self._attempt(row, moment)

        results = await asyncio.gather(*(one(row) for row in rows))
        return Delivered(
            sent=sum(1 for r in results if r is True), failed=sum(1 for r in results if r is False)
        )

    async def prune(self, now: datetime | None = None) -> int:
        """Forget rows delivered more than `KEEP_DELIVERED` ago; pending rows stay."""
        async with self.store.session() as session:
            return await ob.prune_delivered(session, (now or datetime.now(UTC)) - KEEP_DELIVERED)

    async def next_due(self) -> datetime | None:
        async with self.store.reader() as session:
            return await ob.next_attempt(session)

    async def _attempt(self, row: ob.OutboxRow, now: datetime) -> bool | None:
        """True: delivered; False: failed, retried later; None: another sender has it."""
        lease = timedelta(seconds=self.events.timeout_s + LEASE_MARGIN_S)
        async with self.store.session() as session:
            if not await ob.claim_delivery(session, row, until=now + lease):
                return None
        error = await self._post(row)
        async with self.store.session() as session:
            if error is None:
                await ob.mark_delivered(session, row.id, now)
            else:
                attempts = row.attempts + 1
                wait = backoff_s(
                    attempts, self.events.retry_base_s, self.events.retry_max_s, self.rng
                )
                await ob.mark_retry(session, row.id, at=now + timedelta(seconds=wait), error=error)
        if error is None:
            log.info("routing.event_delivered", event_id=row.event_id, attempts=row.attempts + 1)
            return True
        log.warning(
            "routing.event_retry", event_id=row.event_id, attempts=row.attempts + 1, error=error
        )
        return False

    async def _post(self, row: ob.OutboxRow) -> str | None:
        """None when the receiver took it; else why not (never the body or secret)."""
        secret = self.events.secret.get_secret_value()
        sent = headers(row.body, event_id=row.event_id, at=row.created_at, secret=secret)
        try:
            response = await self._http().post(row.url, content=row.body, headers=sent)
        except httpx.HTTPError as exc:
            return f"no answer: {type(exc).__name__}"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"
