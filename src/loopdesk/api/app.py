"""The HTTP service. Surfaces stay thin: parse, call a service, render."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import structlog
from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from loopdesk import __version__
from loopdesk import store as db
from loopdesk.actions.outcome import ActionOutcome
from loopdesk.actions.run import ActionRunner, AllowlistType
from loopdesk.api.auth import require_api_key
from loopdesk.api.errors import error_response, install_error_handlers
from loopdesk.api.keycache import KeyCache
from loopdesk.api.limits import BodySizeLimit
from loopdesk.api.metrics import Metrics, RequestMetrics
from loopdesk.customers.service import CustomerService
from loopdesk.customers.webhooks import ReturnReads, ingest, replay_received
from loopdesk.logs import configure_logging
from loopdesk.loop.returns import ReturnAction
from loopdesk.runtime import SANDBOX_NOTICE, Upstream
from loopdesk.sandbox.webhooks import configure_webhooks
from loopdesk.settings import Settings

log = structlog.get_logger(__name__)

MAX_ID = 2**63 - 1  # ids are 64-bit in both databases


def _runner(request: Request) -> ActionRunner:
    runner: ActionRunner = request.app.state.actions
    return runner


Runner = Annotated[ActionRunner, Depends(_runner)]
KeyName = Annotated[str, Depends(require_api_key)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


class ReturnLinkIn(BaseModel):
    orderName: str = Field(min_length=1, max_length=200)
    zip: str = Field(min_length=1, max_length=320, description="ZIP, email or phone")


class AllowlistIn(BaseModel):
    type: AllowlistType
    value: str = Field(min_length=1, max_length=500)


class NoteIn(BaseModel):
    content: str = Field(min_length=1, max_length=255)


class CustomerIn(BaseModel):
    """A Gladly-style customer profile (only the addresses matter to a lookup)."""

    emails: list[str] = Field(default_factory=list)
    emailAddresses: list[str] = Field(default_factory=list)
    primaryEmailAddress: str | None = None


def _aware(moment: datetime | None) -> datetime | None:
    """Query times without a zone read as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def create_app(
    settings: Settings | None = None,
    *,
    upstream: Upstream | None = None,
    store: db.Store | None = None,
) -> FastAPI:
    settings = settings or Settings()
    upstream = upstream or Upstream.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        opened = store or await db.Store.open(settings.database_url, migrate=True)
        app.state.store = opened
        app.state.customers = CustomerService(
            opened,
            upstream.returns,
            upstream.tracking,
            settings,
            source="sandbox" if upstream.sandbox is not None else "loop",
        )
        app.state.actions = ActionRunner(opened, upstream.returns)
        app.state.webhook_reads = reads = ReturnReads(upstream.returns, opened)
        # Events a crash or an outage left `received` are applied now, beside requests.
        replaying = asyncio.create_task(replay_received(opened, reads))
        receiver: httpx.AsyncClient | None = None
        if upstream.sandbox is not None:
            log.warning("sandbox.in_use", notice=SANDBOX_NOTICE)
            if settings.sandbox_webhooks_to_self:
                # The in-process sandbox signs its state changes to our own webhook
                # endpoint, so the demo exercises the whole webhook path.
                receiver = httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://loopdesk.local"
                )
                configure_webhooks(
                    upstream.sandbox,
                    "http://loopdesk.local/webhooks/loop",
                    settings.loop_webhook_secret.get_secret_value(),
                    client=receiver,
                )
        try:
            yield
        finally:
            replaying.cancel()
            with contextlib.suppress(BaseException):
                await replaying
            if receiver is not None and upstream.sandbox is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(upstream.sandbox.state.webhook_tasks_drained(), 5)
                await receiver.aclose()
            await app.state.customers.aclose()
            await upstream.aclose()
            if store is None:
                await opened.close()

    app = FastAPI(
        title="loopdesk",
        version=__version__,
        summary="Loop Returns and Loop Order Tracking for customer support.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.upstream = upstream
    app.state.key_cache = KeyCache(ttl_s=settings.api_key_cache_s)
    app.state.env_api_key = settings.api_key.get_secret_value() if settings.api_key else None
    app.state.metrics = metrics = Metrics(upstream)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)

    app.add_middleware(RequestMetrics, metrics=metrics)

    if upstream.sandbox is not None:
        # The same sandbox the clients use in-process, also reachable over HTTP.
        app.mount("/sandbox", upstream.sandbox)

    # --- operations ------------------------------------------------------------

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: {"description": "not ready"}})
    async def readyz(request: Request) -> JSONResponse:
        if await request.app.state.store.ping():
            return JSONResponse({"status": "ready"})
        return error_response(503, "not_ready", "database unreachable")

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # --- customers -------------------------------------------------------------

    async def _lookup(request: Request, emails: list[str]) -> dict[str, Any]:
        fresh = "no-cache" in request.headers.get("cache-control", "").lower()
        view = await request.app.state.customers.lookup(emails, fresh=fresh)
        metrics.lookups.labels("stale" if view.meta.stale else view.meta.source).inc()
        result: dict[str, Any] = view.to_json()
        return result

    @app.get("/v1/customers/lookup", tags=["customers"], summary="A customer's returns and orders")
    async def customer_lookup(
        request: Request,
        _key: KeyName,
        email: Annotated[list[str], Query(min_length=1, description="Profile addresses")],
    ) -> dict[str, Any]:
        return await _lookup(request, email)

    @app.post("/v1/customers/lookup", tags=["customers"], summary="Lookup by customer profile")
    async def customer_lookup_profile(
        request: Request, _key: KeyName, customer: CustomerIn
    ) -> dict[str, Any]:
        emails = [customer.primaryEmailAddress or "", *customer.emailAddresses, *customer.emails]
        return await _lookup(request, emails)

    # --- webhooks --------------------------------------------------------------

    @app.post("/webhooks/loop", tags=["webhooks"], summary="Loop webhook receiver")
    async def loop_webhook(
        request: Request,
        x_loop_signature: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        body = await request.body()
        secret = settings.loop_webhook_secret.get_secret_value()
        result = await ingest(
            request.app.state.store,
            body,
            x_loop_signature,
            secret,
            reads=request.app.state.webhook_reads,
        )
        if result.result == "applied":
            request.app.state.customers.invalidate()
        metrics.webhooks.labels(result.result).inc()
        return {"received": True, "eventId": result.event_id, "result": result.result}

    # --- actions ---------------------------------------------------------------

    def _answer(outcome: ActionOutcome) -> JSONResponse:
        app.state.customers.invalidate()
        metrics.actions.labels(outcome.action, str(outcome.ok).lower()).inc()
        return JSONResponse(outcome.body, status_code=outcome.status)

    @app.post("/v1/actions/return-link", tags=["actions"])
    async def return_link(
        runner: Runner, key: KeyName, body: ReturnLinkIn, idem: IdempotencyKey = None
    ) -> JSONResponse:
        outcome = await runner.return_link(
            body.orderName, body.zip, key_name=key, idempotency_key=idem
        )
        return _answer(outcome)

    @app.post("/v1/actions/allowlist", tags=["actions"])
    async def allowlist_add(
        runner: Runner, key: KeyName, body: AllowlistIn, idem: IdempotencyKey = None
    ) -> JSONResponse:
        outcome = await runner.allowlist_add(
            body.type, body.value, key_name=key, idempotency_key=idem
        )
        return _answer(outcome)

    @app.delete("/v1/actions/allowlist/{entry_id}", tags=["actions"])
    async def allowlist_delete(
        runner: Runner, key: KeyName, entry_id: str, idem: IdempotencyKey = None
    ) -> JSONResponse:
        outcome = await runner.allowlist_delete(entry_id, key_name=key, idempotency_key=idem)
        return _answer(outcome)

    @app.post("/v1/returns/{return_id}/notes", tags=["actions"])
    async def add_note(
        runner: Runner,
        key: KeyName,
        return_id: str,
        body: NoteIn,
        idem: IdempotencyKey = None,
    ) -> JSONResponse:
        outcome = await runner.add_note(return_id, body.content, key_name=key, idempotency_key=idem)
        return _answer(outcome)

    @app.post("/v1/returns/{return_id}/{action}", tags=["actions"])
    async def return_action(
        runner: Runner,
        key: KeyName,
        return_id: str,
        action: ReturnAction,
        idem: IdempotencyKey = None,
    ) -> JSONResponse:
        outcome = await runner.return_action(return_id, action, key_name=key, idempotency_key=idem)
        return _answer(outcome)

    @app.get("/v1/audit", tags=["audit"])
    async def audit(
        request: Request,
        _key: KeyName,
        action: str | None = None,
        key: str | None = None,
        since: Annotated[datetime | None, Query(description="At or after (ISO 8601)")] = None,
        until: Annotated[datetime | None, Query(description="Before (ISO 8601)")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        before: Annotated[
            int | None,
            Query(ge=1, le=MAX_ID, description="Page: items older than this id"),
        ] = None,
    ) -> dict[str, Any]:
        async with request.app.state.store.session() as session:
            rows = await db.list_audit(
                session,
                action=action,
                key_name=key,
                since=_aware(since),
                until=_aware(until),
                limit=limit,
                before_id=before,
            )
        items = [
            {
                "id": row.id,
                "action": row.action,
                "at": row.at.isoformat(),
                "key": row.key_name,
                "inputs": row.inputs,
                "result": row.result,
                "ok": row.ok,
            }
            for row in rows
        ]
        next_before = rows[-1].id if len(rows) == limit else None
        return {"items": items, "nextBefore": next_before}

    return app
