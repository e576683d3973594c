"""Sandbox mode only: seeded customers worth opening first, found in the sandbox's world
(never in Loop's data), so the search page can offer them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from loopdesk.sandbox.seed import DEMO_EMAILS, EXCEPTION_PERSONAS
from loopdesk.sandbox.seed_drafts import DRAFT_PERSONAS


@dataclass(frozen=True)
class Showcase:
    emails: tuple[str, ...]
    shows: str


def showcases(app: FastAPI) -> list[Showcase]:
    sandbox: FastAPI | None = app.state.upstream.sandbox
    if sandbox is None:
        return []
    world = sandbox.state.world
    found = [
        Showcase(
            DEMO_EMAILS,
            "8 returns: a refund pending for weeks, an out-of-stock exchange, an expired "
            "return, one in review",
        )
    ]
    stalled = _first_with_shipment(world.orders, "SHIPMENT_STALLED")
    if stalled:
        person = next((p for p in world.customers if stalled in p), [stalled])
        found.append(Showcase(tuple(person), "a stalled shipment"))
    if any(o["name"] == EXCEPTION_PERSONAS[0].order_name for o in world.orders):
        persona = EXCEPTION_PERSONAS[0]
        found.append(Showcase((persona.email,), f"past the return window: {persona.note}"))
    for draft in DRAFT_PERSONAS:
        if world.find_order(draft.order_name) is not None:
            shows = f"create a return for {draft.order_name} (ZIP {draft.zip}): {draft.note}"
            found.append(Showcase((draft.email,), shows))
    return found


def _first_with_shipment(orders: list[dict[str, Any]], status: str) -> str | None:
    for order in orders:
        if any(s.get("status") == status for s in order.get("shipments", [])):
            return str(order["customer_email"])
    return None
