"""Wiring for the surfaces: what a process uses, built once from settings.

`Upstream` holds the clients for Loop's two APIs (and Gladly's, when configured). With
no Loop token configured, both talk to the built-in sandbox in the same process (through
`httpx.ASGITransport`, no socket), which surfaces announce; so does Gladly's, to the
sandbox's Gladly simulator, unless a Gladly organisation is configured. `Services` adds
the store and the services on top: the HTTP app, the CLI and the tests all take this one
path (store, freshness, limits).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import httpx
from fastapi import FastAPI

from loopdesk import store as db
from loopdesk.actions.run import ActionRunner
from loopdesk.customers.lookup import LookupOptions
from loopdesk.customers.service import CustomerService
from loopdesk.customers.webhook_desk import WebhookDesk
from loopdesk.customers.webhooks import ReturnReads
from loopdesk.drafts import DraftDesk
from loopdesk.gladly.client import GladlyClient
from loopdesk.gladly.reroute import GladlyConfig, GladlyRerouter
from loopdesk.guides.context import GuideServices
from loopdesk.guides.engine import GuideEngine
from loopdesk.guides.render import Renderer
from loopdesk.loop.closing import AsyncClosing
from loopdesk.loop.drafts import LoopDraftsClient
from loopdesk.loop.returns import LoopReturnsClient
from loopdesk.loop.tracking import OrderTrackingClient
from loopdesk.policy.file import Policy, load_policy
from loopdesk.policy.grant import ExceptionDesk
from loopdesk.routing.outbox import Sender
from loopdesk.routing.reroute import Rerouter
from loopdesk.routing.service import RoutingConfig
from loopdesk.sandbox.app import create_sandbox_app
from loopdesk.sandbox.gladly import PREFIX as GLADLY_PREFIX
from loopdesk.sandbox.gladly import GladlySimulator, sandbox_queue_inboxes
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
    # Gladly's API: the configured organisation, else in sandbox mode the simulator.
    gladly: GladlyClient | None = None

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
            gladly = GladlyClient.from_settings(settings)
            if gladly is None:
                simulator: GladlySimulator = app.state.gladly
                gladly = GladlyClient(
                    base_url=SANDBOX_BASE_URL + GLADLY_PREFIX,
                    user=simulator.user,
                    token=simulator.token,
                    settings=settings,
                    transport=transport,
                )
            return cls(
                settings=settings,
                returns=LoopReturnsClient(
                    base_url=SANDBOX_BASE_URL, token=token, settings=settings, transport=transport
                ),
                tracking=OrderTrackingClient(
                    base_url=SANDBOX_BASE_URL, token=token, settings=settings, transport=transport
                ),
                sandbox=app,
                gladly=gladly,
            )
        tracking = None
        if settings.order_tracking_token and settings.order_tracking_token.get_secret_value():
            tracking = OrderTrackingClient.from_settings(settings)
        return cls(
            settings=settings,
            returns=LoopReturnsClient.from_settings(settings),
            tracking=tracking,
            gladly=GladlyClient.from_settings(settings),
        )

    @cached_property
    def drafts(self) -> LoopDraftsClient:
        """Loop's Draft Returns API on the returns client's HTTP path (closed with it)."""
        return LoopDraftsClient.over(self.returns)

    @property
    def gladly_simulated(self) -> bool:
        """The Gladly client talks to the sandbox's simulator."""
        return self.gladly is not None and self.gladly.base_url.startswith(SANDBOX_BASE_URL)

    async def aclose(self) -> None:
        await self.returns.aclose()
        if self.tracking is not None:
            await self.tracking.aclose()
        if self.gladly is not None:
            await self.gladly.aclose()


@dataclass
class Services(AsyncClosing):
    """The store, the upstream clients and the services over them, for one process."""

    settings: Settings
    upstream: Upstream
    store: db.Store
    customers: CustomerService
    actions: ActionRunner
    webhook_reads: ReturnReads
    # Loop's webhooks: recorded, acknowledged, applied (started by the HTTP app).
    webhooks: WebhookDesk
    rerouter: Rerouter
    routing_sender: Sender
    policy: Policy
    exceptions: ExceptionDesk
    guide: GuideEngine
    drafts: DraftDesk
    # Re-routing Gladly conversations: None without a Gladly API (`Upstream.gladly`).
    gladly: GladlyRerouter | None = None
    owns_store: bool = True

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        upstream: Upstream | None = None,
        store: db.Store | None = None,
        routing: RoutingConfig | None = None,
        policy: Policy | None = None,
    ) -> Services:
        """Open the store (migrated) unless given; `aclose` closes what was opened here
        and the upstream clients. The policy file is read here unless given."""
        upstream = upstream or Upstream.from_settings(settings)
        try:
            policy = policy or load_policy(settings.policy_file)
            routing = routing or RoutingConfig.from_settings(settings, policy=policy)
            # The guide's wording is checked before anything else starts.
            renderer = Renderer.load(
                override_dir=settings.guide_templates_dir, shop_name=_shop_name(policy, upstream)
            )
            opened = store or await db.Store.open(settings.database_url, migrate=True)
        except BaseException:
            await upstream.aclose()
            raise
        rerouter = Rerouter(routing, opened, LookupOptions.from_settings(settings))
        actions = ActionRunner(opened, upstream.returns)
        customers = CustomerService(
            opened,
            upstream.returns,
            upstream.tracking,
            settings,
            source="sandbox" if upstream.sandbox is not None else "loop",
            on_refresh=rerouter.refreshed,
        )
        exceptions = ExceptionDesk(opened, upstream.tracking, actions, policy)
        drafts = DraftDesk(opened, upstream.drafts, actions, policy)
        guide = GuideServices(
            store=opened,
            customers=customers,
            actions=actions,
            exceptions=exceptions,
            tracking=upstream.tracking,
            policy=policy,
            routing=routing,
            drafts=drafts,
        )
        gladly = None
        if upstream.gladly is not None:
            gladly = GladlyRerouter(
                client=upstream.gladly,
                config=GladlyConfig.from_settings(
                    settings,
                    sandbox=upstream.gladly_simulated,
                    default_inboxes=sandbox_queue_inboxes(),
                ),
                routing=routing,
                customers=customers,
                rerouter=rerouter,
                actions=actions,
                store=opened,
            )
            rerouter.listeners.append(gladly.changed)
        webhook_reads = ReturnReads(upstream.returns, opened)
        webhook_desk = WebhookDesk(
            opened,
            webhook_reads,
            returns_changed=rerouter.returns_applied,
            return_changed=rerouter.return_applied,
            invalidate=customers.invalidate,
            inline=settings.webhook_apply == "inline",
            sweep_interval_s=settings.webhook_sweep_interval_s,
            max_pending=settings.webhook_max_pending,
        )
        return cls(
            settings=settings,
            upstream=upstream,
            store=opened,
            customers=customers,
            actions=actions,
            webhook_reads=webhook_reads,
            webhooks=webhook_desk,
            rerouter=rerouter,
            routing_sender=Sender(opened, routing.events),
            policy=policy,
            exceptions=exceptions,
            guide=GuideEngine(guide, renderer),
            drafts=drafts,
            gladly=gladly,
            owns_store=store is None,
        )

    async def aclose(self) -> None:
        try:
            await self.webhooks.aclose()  # applies what is queued while all is open
            if self.gladly is not None:
                await self.gladly.aclose()
            await self.routing_sender.aclose()
            await self.customers.aclose()
            await self.upstream.aclose()
        finally:
            if self.owns_store:
                await self.store.close()


def _shop_name(policy: Policy, upstream: Upstream) -> str:
    """The name the guide signs with: the policy file's, else the sandbox shop's."""
    if policy.shop.name or upstream.sandbox is None:
        return policy.shop.name
    return str(upstream.sandbox.state.world.shop.get("name") or "")
