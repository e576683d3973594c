"""Loop's webhooks as the service receives them: verified and parsed in the request,
stored by group commit (`webhook_record`), acknowledged, then applied in the
background (`webhook_worker`).

A new usable event is answered `received` once it is committed; unusable bodies are
stored `failed` and answered so, redeliveries `duplicate` (one still `received` is
handed to the applier again). `settled()` waits for what was handed over to be
applied and re-routed: tests and callers that need to read their write use it.
With `inline` the event is applied before the answer instead (`webhooks.ingest`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import structlog

from loopdesk import store as db
from loopdesk.customers.webhook_batch import Applied, Stored
from loopdesk.customers.webhook_record import Delivery, Recorder, RecordFailed
from loopdesk.customers.webhook_worker import Applier
from loopdesk.customers.webhooks import (
    Ingested,
    ReturnReads,
    WebhookDeferred,
    _parse,
    ingest,
)
from loopdesk.domain.webhooks import signature_valid_any
from loopdesk.errors import Unauthorized

log = structlog.get_logger(__name__)


class WebhookDesk:
    def __init__(
        self,
        store: db.Store,
        reads: ReturnReads | None,
        *,
        returns_changed: Callable[[Sequence[str]], Awaitable[None]] | None = None,
        return_changed: Callable[[str], Awaitable[None]] | None = None,
        invalidate: Callable[[], None] | None = None,
        inline: bool = False,
        sweep_interval_s: float = 60.0,
        max_pending: int = 5000,
    ) -> None:
        self._store = store
        self._reads = reads
        self._returns_changed = returns_changed
        self._return_changed = return_changed
        self._invalidate = invalidate
        self.inline = inline
        self.recorder = Recorder(store)
        self.applier = Applier(
            store,
            reads,
            on_batch=self._after_batch,
            sweep_interval_s=sweep_interval_s,
            max_pending=max_pending,
        )
        # Told each applied outcome (metrics); must not raise.
        self.outcome_listeners: list[Callable[[str], None]] = []

    @property
    def pending(self) -> int:
        """Events acknowledged and not applied yet, in this process."""
        return self.applier.pending

    def start(self) -> None:
        self.applier.start()

    async def settled(self) -> None:
        await self.applier.settled()

    async def aclose(self) -> None:
        await self.recorder.aclose()
        await self.applier.aclose()

    async def receive(
        self, body: bytes, presented_signature: str | None, secrets: Sequence[str]
    ) -> Ingested:
        if self.inline:
            return await self._inline(body, presented_signature, secrets)
        if not signature_valid_any(body, presented_signature, secrets):
            raise Unauthorized("missing or invalid X-Loop-Signature")
        event, problem = _parse(body)
        delivery = Delivery.of(body, event, problem)
        await self.applier.room()
        try:
            recorded = await self.recorder.record(delivery)
        except RecordFailed:
            raise WebhookDeferred("the event could not be stored; send it again") from None
        if event is None:
            if recorded.new:
                log.warning("webhook.unusable", event_id=recorded.event_id, error=problem)
            return Ingested(recorded.event_id, "failed" if recorded.new else "duplicate")
        if recorded.status == "received":  # new, or stored and still not applied
            self.applier.submit([Stored(recorded.event_id, event)])
        return Ingested(recorded.event_id, "received" if recorded.new else "duplicate")

    async def _inline(
        self, body: bytes, presented_signature: str | None, secrets: Sequence[str]
    ) -> Ingested:
        result = await ingest(
            self._store,
            body,
            presented_signature,
            secrets,
            reads=self._reads,
            on_applied=self._return_changed,
        )
        if result.result == "applied" and self._invalidate is not None:
            self._invalidate()
        return result

    async def _after_batch(self, applied: Applied) -> None:
        for result in applied.results.values():
            for listener in self.outcome_listeners:
                listener(result)
        if not applied.changed:
            return
        if self._invalidate is not None:
            self._invalidate()
        if self._returns_changed is not None:
            await self._returns_changed(applied.changed)
