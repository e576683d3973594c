"""Where's my order: each shipment's status, carrier, tracking code and link, and ETA
when Order Tracking has one. A stalled or failed shipment, or a parcel marked delivered
that the customer did not get, goes to an agent with what tracking says."""

from __future__ import annotations

from typing import Any

from loopdesk.customers.order_details import order_details
from loopdesk.domain.facts import SHIPMENT_PROBLEM_STATUSES
from loopdesk.domain.shipments import TrackedOrder
from loopdesk.errors import LoopdeskError
from loopdesk.guides.context import Step, Turn
from loopdesk.guides.flows.orders import as_known, recent_orders
from loopdesk.guides.reply import Link, Reply

TOPIC = "order_status"
MAX_ORDERS = 3


def _shipment(s: Any) -> dict[str, Any]:
    return {
        "status": s.status,
        "carrier": s.carrier,
        "tracking_code": s.tracking_code,
        "tracking_url": s.tracking_url or "",
        "eta": s.eta.isoformat() if s.eta else "",
        "eta_words": f"{s.eta:%A, %B} {s.eta.day}" if s.eta else "",
        "eta_pending": s.eta_pending,
        "delivered_on": s.delivered_at.date().isoformat() if s.delivered_at else "",
        "last_event": s.last_event,
    }


def _order(order: TrackedOrder) -> dict[str, Any]:
    return {"name": order.name, "shipments": [_shipment(s) for s in order.shipments]}


async def order_status(turn: Turn) -> Step:
    state = turn.state
    state.topic = TOPIC
    state.awaiting = ""
    view = await turn.view()
    known = recent_orders(view)
    if turn.entities.order_name:
        state.order_name = as_known(turn.entities.order_name, known)
    wanted = [state.order_name] if state.order_name else [o.name for o in view.orders]
    if not wanted:
        state.awaiting = "order"
        return Step(Reply("order_status.ask_order", {}))
    tracked: list[TrackedOrder] = []
    try:
        for name in wanted[:MAX_ORDERS]:
            found = await order_details(turn.services.tracking, name)
            if found is not None:
                tracked.append(found)
    except LoopdeskError as exc:
        state.note("found", f"Order Tracking could not be reached ({exc.code})")
        return Step(
            Reply("handoff", {"why": "tracking"}), handoff="Order Tracking could not be reached"
        )
    if not tracked:
        state.note("found", f"Order Tracking has no order {', '.join(wanted[:MAX_ORDERS])}")
        state.awaiting = "order"
        state.order_name = ""
        return Step(Reply("order_status.not_found", {"order_name": wanted[0]}))
    orders = [_order(o) for o in tracked]
    links = tuple(
        Link(s["tracking_url"], f"Track {o['name']}")
        for o in orders
        for s in o["shipments"]
        if s["tracking_url"]
    )
    for order in orders:
        for s in order["shipments"]:
            state.note(
                "found", f"order {order['name']}: {s['carrier']} {s['tracking_code']} {s['status']}"
            )
    if len(tracked) == 1:
        state.order_name = tracked[0].name
    problems = [
        (o, s) for o in orders for s in o["shipments"] if s["status"] in SHIPMENT_PROBLEM_STATUSES
    ]
    delivered = [(o, s) for o in orders for s in o["shipments"] if s["status"] == "DELIVERED"]
    if turn.entities.not_received and delivered:
        order, shipment = delivered[0]
        return Step(
            Reply("order_status.not_received", {"order": order, "shipment": shipment}, links=links),
            handoff=f"order {order['name']} shows delivered but the customer did not receive it",
        )
    if problems:
        order, shipment = problems[0]
        return Step(
            Reply("order_status.problem", {"order": order, "shipment": shipment}, links=links),
            handoff=f"shipment {shipment['tracking_code']} of {order['name']} is "
            f"{shipment['status']}",
        )
    state.note("told", "orders:" + ",".join(o["name"] for o in orders))
    return Step(Reply("order_status.orders", {"orders": orders}, links=links))
