"""One order's shipments, items and delivery, from Order Tracking's REST search."""

from __future__ import annotations

from loopdesk.domain.shipments import TrackedOrder, order_key, tracked_order
from loopdesk.errors import InvalidInput, LoopdeskError, LoopNotFound
from loopdesk.loop.tracking import OrderTrackingClient

MAX_ORDER_NAME = 200


class OrderTrackingNotConfigured(LoopdeskError):
    """No Order Tracking token: an order's shipments, items and delivery are unknown."""

    code = "order_tracking_not_configured"
    http_status = 503


async def order_details(
    tracking: OrderTrackingClient | None, order_name: str
) -> TrackedOrder | None:
    """The order named `order_name` (`#1086` or `1086`) as Order Tracking knows it; None
    when it has no such order.

    The search also matches tracking codes, so an answer for another order name is no
    answer for this one (None). Loop's errors (`LoopError`, `LoopUnavailable` ...)
    propagate; without an Order Tracking client, `OrderTrackingNotConfigured`.
    """
    name = order_name.strip()
    if not order_key(name) or len(name) > MAX_ORDER_NAME:
        raise InvalidInput(f"an order name has 1 to {MAX_ORDER_NAME} characters")
    if tracking is None:
        raise OrderTrackingNotConfigured(
            "Loop Order Tracking is not configured (LOOPDESK_ORDER_TRACKING_TOKEN): "
            "the order's delivery is unknown"
        )
    try:
        body = await tracking.search_shipments(name)
    except LoopNotFound:  # "We couldn't find that order"
        return None
    order = tracked_order(body)
    if order is None or order_key(order.name) != order_key(name):
        return None
    return order
