"""The sandbox as one ASGI app: Loop Returns under /api/..., Order Tracking at /graphql
and /2022-10/..., a Gladly simulator under /gladly/api/v1, control routes under /_sandbox/.

Serve it alone with `uvicorn --factory loopdesk.sandbox.app:create_sandbox_app`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from loopdesk.sandbox import (
    control,
    gladly,
    loop_orders,
    loop_returns,
    return_actions,
    return_details,
    returns_list,
    subscriptions,
    tracking_graphql,
    tracking_rest,
    webhooks,
)
from loopdesk.sandbox.data import load_world
from loopdesk.sandbox.drafts import control as draft_control
from loopdesk.sandbox.drafts import routes as drafts
from loopdesk.sandbox.faults import FaultController
from loopdesk.sandbox.middleware import SandboxMiddleware
from loopdesk.sandbox.ratelimit import RollingLimiter
from loopdesk.sandbox.seed import generate_world
from loopdesk.sandbox.world import World
from loopdesk.settings import Settings

Handler = Callable[[Request], Awaitable[Response]]

# `v1` is Loop's legacy alias of the 2026-07 version: both serve the same routes.
LOOP_PREFIXES = ("/api/v1", "/api/2026-07")

_LOOP_ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/warehouse/return/list", returns_list.list_returns),
    ("GET", "/warehouse/return/details", return_details.return_details),
    ("POST", "/warehouse/return/{return_id}/process", return_actions.process_return),
    ("POST", "/warehouse/return/{return_id}/close", return_actions.close_return),
    ("POST", "/warehouse/return/{return_id}/cancel", return_actions.cancel_return),
    ("POST", "/warehouse/return/{return_id}/flag", return_actions.flag_return),
    ("GET", "/warehouse/return/{return_id}/notes", loop_returns.list_notes),
    ("POST", "/warehouse/return/{return_id}/note", loop_returns.add_note),
    ("POST", "/order/link", loop_orders.order_link),
    ("POST", "/allowlists", loop_orders.create_allowlist),
    ("GET", "/allowlists", loop_orders.list_allowlist),
    ("GET", "/allowlists/{entry_id}", loop_orders.get_allowlist),
    ("DELETE", "/allowlists/{entry_id}", loop_orders.delete_allowlist),
    ("GET", "/webhooks", subscriptions.list_webhooks),
    ("POST", "/webhooks", subscriptions.create_webhook),
    ("GET", "/webhooks/{webhook_id}", subscriptions.get_webhook),
    ("PUT", "/webhooks/{webhook_id}", subscriptions.update_webhook),
    ("DELETE", "/webhooks/{webhook_id}", subscriptions.delete_webhook),
    *drafts.ROUTES,
)
_OTHER_ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/api/v2/returns", loop_returns.list_returns),
    ("POST", "/graphql", tracking_graphql.graphql_endpoint),
    ("GET", "/2022-10/shipments/search", tracking_rest.search_shipments),
    ("GET", "/2022-10/shipments/search/{term:path}", tracking_rest.search_shipments),
    ("GET", "/_sandbox/health", control.health),
    ("GET", "/_sandbox/faults", control.list_faults),
    ("POST", "/_sandbox/faults", control.add_fault),
    ("DELETE", "/_sandbox/faults", control.clear_faults),
    ("GET", "/_sandbox/requests", control.request_counts),
    ("DELETE", "/_sandbox/requests", control.reset_requests),
    ("POST", "/_sandbox/webhooks", control.set_webhooks),
    ("DELETE", "/_sandbox/webhooks", control.clear_webhooks),
    ("POST", "/_sandbox/returns/{return_id}/label", control.update_label),
    ("POST", "/_sandbox/returns/{return_id}/touch", control.touch_return),
    ("POST", "/_sandbox/details", return_details.configure),
    *draft_control.ROUTES,
)


def create_sandbox_app(settings: Settings | None = None, world: World | None = None) -> FastAPI:
    """A fresh sandbox; `app.state.world` is its data, `app.state.faults` its fault controls.

    `app.state.webhooks` is the webhook sender set by the control route (None: none; see
    `webhooks.configure_webhooks`), `app.state.subscriptions` the URLs subscribed through
    Loop's webhooks API; both receive the webhooks. `await app.state.webhook_tasks_drained()`
    waits for the deliveries under way. `app.state.gladly` is the Gladly simulator
    (`sandbox.gladly`). `app.state.drafts` holds the draft returns (`sandbox.drafts`).
    """
    settings = settings or Settings()
    if world is None:
        # A bad data file raises ConfigError here, at start-up, not at the first request.
        world = (
            load_world(settings.sandbox_data)
            if settings.sandbox_data is not None
            else generate_world(settings.sandbox_seed, settings.sandbox_customers)
        )
    app = FastAPI(title="loopdesk sandbox", openapi_url=None, docs_url=None, redoc_url=None)
    for method, path, handler in _OTHER_ROUTES:
        app.add_api_route(path, handler, methods=[method], include_in_schema=False)
    for prefix in LOOP_PREFIXES:
        for method, path, handler in _LOOP_ROUTES:
            app.add_api_route(prefix + path, handler, methods=[method], include_in_schema=False)
    faults = FaultController(
        latency_ms=settings.sandbox_latency_ms,
        error_rate=settings.sandbox_error_rate,
        seed=settings.sandbox_seed,
    )
    per_minute = settings.sandbox_rate_limit_per_minute
    # An empty LOOPDESK_SANDBOX_TOKEN means "no particular token", like an unset one.
    token = settings.sandbox_token.get_secret_value().strip() if settings.sandbox_token else ""
    app.add_middleware(
        SandboxMiddleware,
        faults=faults,
        limiter=(
            RollingLimiter(per_minute, retry_after=settings.sandbox_rate_limit_retry_after)
            if per_minute > 0
            else None
        ),
        token=token or None,
    )
    app.state.settings = settings
    app.state.world = world
    app.state.faults = faults
    draft_control.install(app, settings)
    webhooks.install(app)
    subscriptions.install(app, webhooks.shop_id(world))
    gladly.install(app, settings)  # the Gladly simulator, under /gladly
    return app
