"""What one turn of a flow works with: the customer, the message, the state, and the
services a flow may ask to act (lookup, return link, exception, order details, draft
returns)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loopdesk import store as db
from loopdesk.actions.run import ActionRunner
from loopdesk.customers.service import CustomerService
from loopdesk.customers.view import CustomerView
from loopdesk.domain.facts import Customer, facts
from loopdesk.drafts import DraftDesk
from loopdesk.guides.classifier import Classified
from loopdesk.guides.entities import Entities
from loopdesk.guides.reply import Channel, Reply
from loopdesk.guides.state import ConversationState
from loopdesk.loop.tracking import OrderTrackingClient
from loopdesk.policy.file import Policy
from loopdesk.policy.grant import ExceptionDesk
from loopdesk.routing.service import RoutingConfig


@dataclass(frozen=True)
class Profile:
    """The help desk's customer, as `POST /v1/guide/messages` gives it."""

    emails: tuple[str, ...]
    phones: tuple[str, ...] = ()
    name: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def first_name(self) -> str:
        return self.name.strip().split(" ")[0] if self.name.strip() else ""


@dataclass(frozen=True)
class GuideServices:
    store: db.Store
    customers: CustomerService
    actions: ActionRunner
    exceptions: ExceptionDesk
    tracking: OrderTrackingClient | None
    policy: Policy
    routing: RoutingConfig
    # Returns created in the conversation; None: links only (as with the switch off).
    drafts: DraftDesk | None = None


@dataclass(frozen=True)
class Step:
    """A flow's answer: what to say and, when the guide stops, why (for the agent)."""

    reply: Reply
    handoff: str | None = None


@dataclass
class Turn:
    services: GuideServices
    conversation_id: str
    channel: Channel
    profile: Profile
    text: str
    intent: Classified
    entities: Entities
    state: ConversationState
    now: datetime
    _view: CustomerView | None = None

    @property
    def actor(self) -> str:
        """Who the audit trail names for what the guide does."""
        return f"guide:{self.conversation_id}"[:128]

    async def view(self) -> CustomerView:
        """The customer's returns and orders (store when fresh, Loop otherwise), once
        per turn."""
        if self._view is None:
            self._view = await self.services.customers.lookup(list(self.profile.emails))
        return self._view

    @property
    def vip(self) -> bool:
        customer = Customer(emails=self.profile.emails, attributes=dict(self.profile.attributes))
        return bool(facts([], [], self.now, self.services.policy.facts, customer=customer)["vip"])
