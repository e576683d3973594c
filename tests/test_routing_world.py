"""Facts and decisions over the sandbox's seeded world (every return state, label status
and outcome, orders in every shipment status): no record breaks them, they agree with
each other, and each default rule decides for someone."""

from __future__ import annotations

from datetime import UTC, datetime

from loopdesk.domain.facts import OPEN_STATES, facts
from loopdesk.domain.normalize import normalize_order, normalize_returns
from loopdesk.routing.decide import decide
from loopdesk.routing.rules import load_rules
from loopdesk.sandbox.seed import generate_world

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_every_seeded_customer_gets_consistent_facts_and_a_decision() -> None:
    world = generate_world(seed=1086, customers=240, now=NOW)
    rules = load_rules()
    decided: set[str] = set()
    for addresses in world.customers:
        wanted = {a.lower() for a in addresses}
        returns = normalize_returns(list(world.returns.values()), addresses).items
        orders = [
            normalize_order({"name": o["name"], "shipments": o["shipments"]})
            for o in world.orders
            if str(o.get("customer_email", "")).lower() in wanted
        ]
        got = facts(returns, orders, NOW)
        open_count = sum(r.state.lower() in OPEN_STATES for r in returns)
        assert got["open_return_count"] == open_count
        assert got["has_open_return"] is (open_count > 0)
        assert got["refund_pending"] or got["refund_pending_days"] == 0
        assert not got["refund_pending"] or got["has_open_return"]
        assert got["latest_return_state"] in {"", *(r.state.lower() for r in returns)}
        decided.add(decide(rules, got, "chat", "").rule)
    assert decided >= {
        "refund-waiting-a-week",
        "open-return",
        "shipment-problem",
        "everything-else",
    }
