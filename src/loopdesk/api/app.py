"""The HTTP service: built once from `Settings`; the routes live in `api.routes`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import structlog
from fastapi import FastAPI

from loopdesk import __version__, heap
from loopdesk import store as db
from loopdesk.api.answer_first import AnswerFirst
from loopdesk.api.errors import install_error_handlers
from loopdesk.api.held_lookups import HeldLookups
from loopdesk.api.keycache import KeyCache
from loopdesk.api.limits import BodySizeLimit
from loopdesk.api.metrics import Metrics, RequestMetrics
from loopdesk.api.routes import (
    actions,
    app_actions,
    audit,
    customers,
    drafts,
    exceptions,
    gladly_lookup,
    gladly_webhooks,
    guide,
    ops,
    routing,
    webhooks,
)
from loopdesk.api.sandbox_guard import SandboxGuard
from loopdesk.guides.classifier import default_classifier
from loopdesk.logs import configure_logging, secret_values
from loopdesk.policy.file import load_policy
from loopdesk.routing.scan import run_periodic
from loopdesk.routing.service import RoutingConfig
from loopdesk.runtime import SANDBOX_NOTICE, Services, Upstream
from loopdesk.sandbox.webhooks import configure_webhooks
from loopdesk.settings import WEBHOOK_SECRET_SETTING, Settings
from loopdesk.web import install as install_console

log = structlog.get_logger(__name__)


async def _warm_up() -> None:
    await asyncio.to_thread(default_classifier)
    heap.freeze()


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
        configure_logging(settings.log_level, secrets=secret_values(settings))
        services = await Services.open(
            settings,
            upstream=upstream,
            store=store,
            routing=app.state.routing,
            policy=app.state.policy,
        )
        app.state.services = services
        app.state.store = services.store
        app.state.customers = services.customers
        app.state.metrics.customers = services.customers
        app.state.metrics.webhook_desk = services.webhooks
        app.state.actions = services.actions
        app.state.webhook_reads = services.webhook_reads
        app.state.webhooks = services.webhooks
        app.state.exceptions = services.exceptions
        app.state.guide = services.guide
        app.state.drafts = services.drafts
        gladly_lookup.startup_notice(settings)
        if not settings.webhook_secrets:
            log.warning(
                "webhooks.refused_no_secret",
                setting=WEBHOOK_SECRET_SETTING,
                notice=f"every Loop webhook is refused with 401 until {WEBHOOK_SECRET_SETTING}"
                " holds the secret(s) of the webhook subscriptions",
            )
        # The guide's classifier trains in a thread now, not on the first message;
        # then start-up's objects leave the collector's full scans.
        warming = asyncio.create_task(_warm_up())
        # Loop's webhooks are applied after their answer; what a crash or an outage
        # left `received` is applied now, beside requests, and swept periodically.
        services.webhooks.outcome_listeners.append(app.state.metrics.webhook_applied)
        services.webhooks.start()
        # Routing events: the outbox sent (what a restart left, first), the store scanned.
        rerouting = asyncio.create_task(
            run_periodic(
                services.rerouter,
                services.routing_sender,
                interval_s=app.state.routing.events.scan_interval_s,
            )
        )
        tasks = [rerouting, warming]
        # Gladly: stored events retried, conversations of changed outcomes moved.
        gladly = services.gladly
        if gladly is not None:
            tasks.append(asyncio.create_task(gladly.run_periodic()))
            if not gladly.config.auth.configured:
                log.warning("gladly.webhooks_refused", notice=gladly_webhooks.NO_CREDENTIALS)
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
                    settings.sandbox_webhook_secret,
                    client=receiver,
                )
                if gladly is not None and upstream.gladly_simulated:
                    upstream.sandbox.state.gladly.configure(
                        "http://loopdesk.local/webhooks/gladly",
                        headers=gladly.config.auth.headers(),
                        client=receiver,
                    )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            heap.thaw()
            if receiver is not None and upstream.sandbox is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(upstream.sandbox.state.webhook_tasks_drained(), 5)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(upstream.sandbox.state.gladly.drained(), 5)
                await receiver.aclose()
            await services.aclose()

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
    app.state.policy = policy = load_policy(settings.policy_file)  # a bad policy file fails here
    # ... and a bad rules file here.
    app.state.routing = RoutingConfig.from_settings(settings, policy=policy)
    install_error_handlers(app)
    # Innermost: a store write after a lookup begins once the answer has left (the
    # layers outside only pass it on); a held answer, which writes nothing, skips it.
    app.add_middleware(AnswerFirst)
    # A held lookup's answer still passes the size limit and the metrics.
    app.add_middleware(HeldLookups, service=app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)

    if upstream.sandbox is not None:
        # The same sandbox the clients use in-process, also reachable over HTTP; its
        # control routes take an API key there (`api.sandbox_guard`).
        app.mount("/sandbox", SandboxGuard(upstream.sandbox, service=app))

    for router in (ops.router, customers.router, webhooks.router, actions.router, audit.router):
        app.include_router(router)
    app.include_router(routing.router)
    app.include_router(exceptions.router)
    app.include_router(drafts.router)
    app.include_router(guide.router)
    app.include_router(gladly_lookup.router)
    app.include_router(app_actions.router)
    app.include_router(gladly_webhooks.router)
    # The console's pages at `/` (the rest under `/console/`), over the routes above.
    install_console(
        app, settings.console_secret.get_secret_value() if settings.console_secret else None
    )
    return app
