"""The hand-off: what an agent needs to take over without asking again.

The summary says what the customer asked (their own words, and the order and answers
they gave), what loopdesk found, what it did, and why it stopped. The queue and priority
are the routing rules' decision for this customer now, with the facts it read.
"""

from __future__ import annotations

import structlog

from loopdesk.domain.facts import Customer, facts
from loopdesk.errors import LoopdeskError
from loopdesk.guides.context import Turn
from loopdesk.guides.state import HandoffRecord
from loopdesk.routing.decide import decide
from loopdesk.routing.service import route_customer

log = structlog.get_logger("loopdesk.guides")
MAX_QUOTED = 5


def _sentence(text: str) -> str:
    return text.rstrip(".!? ") + "."


def summary_text(turn: Turn, reason: str) -> str:
    state = turn.state
    lines = [f"Hand-off: {reason.rstrip('.!? ')}."]
    # The first message says what they came for; the last ones, where it stopped.
    asked = [f'"{a}"' for a in state.asked]
    if len(asked) > MAX_QUOTED:
        asked = [asked[0], "...", *asked[1 - MAX_QUOTED :]]
    if asked:
        lines.append("Customer asked: " + " | ".join(asked))
    gave = []
    if state.order_name:
        gave.append(f"order {state.order_name}")
    if state.verification:
        gave.append(f"verification {state.verification!r}")
    if gave:
        lines.append("Customer gave: " + ", ".join(gave) + ".")
    if state.draft is not None:
        draft = state.draft
        lines.append(
            f"Draft return {draft.id} for order {draft.order_name} is left open"
            f" at the {draft.step} step: finish or cancel it for the customer."
        )
    lines.append("Found: " + _sentence("; ".join(state.found) or "nothing yet"))
    lines.append("Done: " + _sentence("; ".join(state.did) or "nothing"))
    if state.links:
        lines.append("Links sent: " + " ".join(state.links))
    return "\n".join(lines)


async def build_handoff(turn: Turn, reason: str, intent: str) -> HandoffRecord:
    services, profile = turn.services, turn.profile
    try:
        routed = await route_customer(
            services.routing,
            services.customers,
            services.store,
            list(profile.emails),
            attributes=dict(profile.attributes),
            channel=turn.channel,
            intent=intent,
            now=turn.now,
        )
        decision, customer_facts = routed.decision, routed.facts
    except LoopdeskError as exc:
        # The hand-off still happens: the rules decide on what is known (nothing).
        log.warning("guide.routing_failed", error=exc.code)
        customer = Customer(emails=profile.emails, attributes=dict(profile.attributes))
        customer_facts = facts([], [], turn.now, services.routing.policy, customer=customer)
        decision = decide(services.routing.rules, customer_facts, turn.channel, intent)
    return HandoffRecord(
        reason=reason,
        summary=summary_text(turn, reason),
        queue=decision.outcome.queue,
        priority=decision.outcome.priority,
        facts=customer_facts.to_json(),
        rule=decision.rule,
        at=turn.now.isoformat(),
    )
