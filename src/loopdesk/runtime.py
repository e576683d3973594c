"""Wiring for the surfaces: the upstream clients a process uses, built from settings.

With no Loop token configured, both clients talk to the built-in sandbox in the same
process (through `httpx.ASGITransport`, no socket), which surfaces announce.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from loopdesk.customers.lookup import LookupOptions, lookup_customer
from loopdesk.customers.view import CustomerView
from loopdesk.loop.closing import AsyncClosing
from loopdesk.loop.returns import LoopReturnsClient
from loopdesk.loop.tracking import OrderTrackingClient
from loopdesk.sandbox.app import create_sandbox_app
from loopdesk.settings import Settings

SANDBOX_NOTICE = "no LOOPDESK_LOOP_API_TOKEN configured: using the built-in Loop sandbox"
SANDBOX_BASE_URL = "http://sandbox.loopdesk.invalid"
SANDBOX_TOKEN = "sandbox"  # noqa: S105 - the in-process sandbox's own token, not a secret


@dataclass
class Upstream(AsyncClosing):
    settings: Settings
    returns: LoopReturnsClient
    tracking: OrderTrackingClient | None
    sandbox: FastAPI | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, sandbox: FastAPI | None = None) -> Upstream:
        if settings.uses_sandbox:
            app = sandbox or create_sandbox_app(settings)
            token = (
                settings.sandbox_token.get_secret_value()
                if settings.sandbox_token
                else SANDBOX_TOKEN
            )
            transport = httpx.ASGITransport(app=app)
            return cls(
                settings=settings,
                returns=LoopReturnsClient(
                    base_url=SANDBOX_BASE_URL, token=token, settings=settings, transport=transport
                ),
                tracking=OrderTrackingClient(
                    base_url=SANDBOX_BASE_URL, token=token, settings=settings, transport=transport
                ),
                sandbox=app,
            )
        tracking = None
        if settings.order_tracking_token and settings.order_tracking_token.get_secret_value():
            tracking = OrderTrackingClient.from_settings(settings)
        return cls(
            settings=settings, returns=LoopReturnsClient.from_settings(settings), tracking=tracking
        )

    async def lookup(self, emails: list[str]) -> CustomerView:
        return await lookup_customer(
            emails,
            self.returns,
            self.tracking,
            LookupOptions.from_settings(self.settings),
            source="sandbox" if self.sandbox is not None else "loop",
        )

    async def aclose(self) -> None:
        await self.returns.aclose()
        if self.tracking is not None:
            await self.tracking.aclose()
