"""The HTTP service: health, OpenAPI, and the customer lookup.

Surfaces stay thin: parse, call `customers` through the process's `Upstream`, render.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, Query, Request

from loopdesk import __version__
from loopdesk.api.auth import new_api_key, require_api_key
from loopdesk.api.errors import install_error_handlers
from loopdesk.runtime import SANDBOX_NOTICE, Upstream
from loopdesk.settings import Settings

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None, *, upstream: Upstream | None = None) -> FastAPI:
    settings = settings or Settings()
    upstream = upstream or Upstream.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if upstream.sandbox is not None:
            log.warning("sandbox.in_use", notice=SANDBOX_NOTICE)
        yield
        await upstream.aclose()

    app = FastAPI(
        title="loopdesk",
        version=__version__,
        summary="Loop Returns and Loop Order Tracking for customer support.",
        lifespan=lifespan,
    )
    app.state.upstream = upstream
    app.state.api_key = settings.api_key.get_secret_value() if settings.api_key else new_api_key()
    install_error_handlers(app)
    if upstream.sandbox is not None:
        # The same sandbox the clients use in-process, also reachable over HTTP.
        app.mount("/sandbox", upstream.sandbox)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/v1/customers/lookup",
        tags=["customers"],
        dependencies=[Depends(require_api_key)],
        summary="One customer's returns and orders",
    )
    async def customer_lookup(
        request: Request,
        email: Annotated[list[str], Query(min_length=1, description="Profile addresses")],
    ) -> dict[str, Any]:
        view = await request.app.state.upstream.lookup(email)
        result: dict[str, Any] = view.to_json()
        return result

    return app
