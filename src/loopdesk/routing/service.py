"""Routing one customer now: their facts through the customer lookup, the decision of
the rules, and its record in the store. The HTTP API and the CLI both come here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from loopdesk import store as db
from loopdesk.customers.service import CustomerService
from loopdesk.domain.facts import Customer, Facts, FactsPolicy, facts
from loopdesk.policy.file import Policy, load_policy
from loopdesk.routing.decide import Decision, decide
from loopdesk.routing.events import EventsConfig
from loopdesk.routing.rules import RuleSet, load_rules
from loopdesk.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RoutingConfig:
    """The compiled rules, the facts' policy and where routing events go, loaded once
    at start-up."""

    rules: RuleSet
    policy: FactsPolicy
    events: EventsConfig = field(default_factory=EventsConfig)

    @classmethod
    def from_settings(cls, settings: Settings, *, policy: Policy | None = None) -> RoutingConfig:
        """Raises `ConfigError` (a `RulesError` for the rules) naming what is wrong. The
        facts' policy is the policy file's `[vip]` (read here unless given)."""
        events = EventsConfig.from_settings(settings)
        rules = load_rules(settings.rules_file)
        for warning in rules.warnings:
            log.warning("routing.rule_warning", problem=str(warning))
        policy = policy or load_policy(settings.policy_file)
        return cls(rules, policy.facts, events)


@dataclass(frozen=True)
class Routed:
    """A recorded decision with the facts it was made on."""

    id: int
    at: datetime
    emails: list[str]
    channel: str
    intent: str
    facts: Facts
    decision: Decision
    stale: bool

    def to_json(self) -> dict[str, Any]:
        return {
            **self.decision.to_json(),
            "facts": self.facts.to_json(),
            "id": self.id,
            "at": self.at.isoformat(),
            "emails": self.emails,
            "channel": self.channel,
            "intent": self.intent,
            "stale": self.stale,
        }


async def route_customer(
    config: RoutingConfig,
    customers: CustomerService,
    store: db.Store,
    emails: list[str],
    *,
    attributes: Mapping[str, Any] | None = None,
    channel: str = "",
    intent: str = "",
    now: datetime | None = None,
) -> Routed:
    """Decide and record. Facts come from the lookup (the store when fresh, Loop
    otherwise; stale data when Loop fails, marked `stale`)."""
    view = await customers.lookup(emails)
    moment = now or datetime.now(UTC)
    addresses = list(view.meta.emails)
    async with store.reader() as session:
        granted = await db.count_granted(session, addresses)
    customer_facts = facts(
        view.returns,
        view.orders,
        moment,
        config.policy,
        customer=Customer(emails=tuple(addresses), attributes=dict(attributes or {})),
        exceptions_granted=granted,
    )
    decision = decide(config.rules, customer_facts, channel, intent)
    # Shared with the decisions of other requests meanwhile: one commit for a burst.
    decision_id = await store.together(
        lambda session: db.record_decision(
            session,
            at=moment,
            emails=addresses,
            channel=channel,
            intent=intent,
            facts=customer_facts.to_json(),
            queue=decision.outcome.queue,
            priority=decision.outcome.priority,
            tags=decision.outcome.tags,
            rule=decision.rule,
        )
    )
    return Routed(
        id=decision_id,
        at=moment,
        emails=[e.strip().lower() for e in addresses],
        channel=channel,
        intent=intent,
        facts=customer_facts,
        decision=decision,
        stale=view.meta.stale,
    )
