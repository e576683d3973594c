"""Loop Order Tracking REST: GET /2022-10/shipments/search/{term} (reference section 8.2).

The contract's orders carry only a shipment's headline fields; the scan history and
location are made up here, derived from the tracking code so the same shipment always
reads the same. The items are the order's `line_items` when the data gives them (title
as `productName`, variant title as `variantName`, a SKU made from the variant id),
else one made up the same way. The ETA is sent as the data holds it: a date, null, or
"pending" (the seeded world has each).
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta
from random import Random
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from loopdesk.sandbox.catalog import CARRIERS, PRODUCTS
from loopdesk.sandbox.responses import json_response
from loopdesk.sandbox.world import World, parse_ts, utcnow

NO_TERM = {"message": "Invalid request. Must include search term."}

# The scans that lead up to each status, oldest first.
_HISTORY: dict[str, tuple[str, ...]] = {
    "SHIPMENT_CREATED": ("SHIPMENT_CREATED",),
    "PRE_TRANSIT": ("PRE_TRANSIT",),
    "TRANSIT": ("PRE_TRANSIT", "TRANSIT"),
    "SHIPMENT_STALLED": ("PRE_TRANSIT", "TRANSIT", "SHIPMENT_STALLED"),
    "OUT_FOR_DELIVERY": ("PRE_TRANSIT", "TRANSIT", "OUT_FOR_DELIVERY"),
    "ATTEMPTED_DELIVERY": ("PRE_TRANSIT", "TRANSIT", "OUT_FOR_DELIVERY", "ATTEMPTED_DELIVERY"),
    "READY_FOR_PICKUP": ("PRE_TRANSIT", "TRANSIT", "READY_FOR_PICKUP"),
    "DELIVERED": ("PRE_TRANSIT", "TRANSIT", "OUT_FOR_DELIVERY", "DELIVERED"),
    "RETURNED": ("PRE_TRANSIT", "TRANSIT", "ATTEMPTED_DELIVERY", "RETURNED"),
    "ERROR": ("PRE_TRANSIT", "ERROR"),
}
_DETAILS = {
    "SHIPMENT_CREATED": ("Shipment information received", "information_received"),
    "PRE_TRANSIT": ("Shipping label created", "label_created"),
    "TRANSIT": ("Departed shipping partner facility", "departed_facility"),
    "SHIPMENT_STALLED": ("No movement for several days", "delayed"),
    "OUT_FOR_DELIVERY": ("Out for delivery", "out_for_delivery"),
    "ATTEMPTED_DELIVERY": ("Delivery attempted, no access to delivery location", "attempted"),
    "READY_FOR_PICKUP": ("Available for pickup at a local facility", "ready_for_pickup"),
    "DELIVERED": ("Delivered, left at front door", "delivered"),
    "RETURNED": ("Returned to sender", "returned_to_sender"),
    "ERROR": ("Carrier reported an exception", "exception"),
}
_PLACES = (
    ("Columbus", "OH", "43215"),
    ("Louisville", "KY", "40213"),
    ("Memphis", "TN", "38118"),
    ("Reno", "NV", "89502"),
    ("Allentown", "PA", "18106"),
)


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _event(shipment: dict[str, Any], status: str, at: datetime, rng: Random) -> dict[str, Any]:
    city, state, zip_code = rng.choice(_PLACES)
    details, substatus = _DETAILS.get(status, (status.replace("_", " ").capitalize(), ""))
    return {
        "trackingCode": shipment["trackingCode"],
        "details": details,
        "status": status,
        "substatus": substatus,
        "date": _timestamp(at),
        "city": city,
        "state": state,
        "zip": zip_code,
        "country": "US",
        "trackingUrl": shipment.get("trackingUrl"),
        "eta": shipment.get("eta"),
        "isTimezoneProvided": False,
        "displayTimezone": "UTC",
        "createdAt": _timestamp(at),
        "locationDisplay": f"{city}, {state}",
    }


def _events(order: dict[str, Any], shipment: dict[str, Any], rng: Random) -> list[dict[str, Any]]:
    """Scans newest first, spread between the order and delivery (or now)."""
    start = parse_ts(order["created_at"]) + timedelta(hours=2)
    delivered = shipment.get("deliveredAt")
    history = _HISTORY.get(shipment["status"], (shipment["status"],))
    # Undelivered parcels get about a scan a day, never one in the future.
    end = parse_ts(delivered) if delivered else min(utcnow(), start + timedelta(days=len(history)))
    end = max(end, start)
    step = (end - start) / max(len(history) - 1, 1)
    scans = [_event(shipment, s, start + step * i, rng) for i, s in enumerate(history)]
    return scans[::-1]


def _line_items(order: dict[str, Any], shipment: dict[str, Any]) -> list[dict[str, Any]]:
    """The order's own `line_items` (when the data gives them), shared out among its
    shipments in turn: the first item in the first parcel, the second in the second..."""
    parcels = order["shipments"]
    index = next((i for i, s in enumerate(parcels) if s is shipment), 0)
    items = order["line_items"][index :: max(len(parcels), 1)]
    return [
        {
            "trackingCode": shipment["trackingCode"],
            "lineItemId": str(item["id"]),
            "productImage": None,
            "productName": item["title"],
            "variantName": item.get("variant_title"),
            "variantImage": None,
            # Loop's line items carry no SKU in the contract: one made from the variant.
            "sku": item.get("sku") or f"SKU-{item.get('variant_id') or item['id']}",
            "quantity": item.get("quantity", 1),
        }
        for item in items
    ]


def shipment_view(order: dict[str, Any], shipment: dict[str, Any]) -> dict[str, Any]:
    rng = Random(zlib.crc32(shipment["trackingCode"].encode()))
    carrier = shipment["carrierDisplayName"]
    service = CARRIERS.get(carrier, ("", "Standard"))[1]
    events = _events(order, shipment, rng)
    product = rng.choice(PRODUCTS)
    variant = rng.choice(product.variants)
    if order.get("line_items") is not None:
        line_items = _line_items(order, shipment)
    else:  # made up, stable per tracking code
        line_items = [
            {
                "trackingCode": shipment["trackingCode"],
                "lineItemId": str(rng.randrange(10**13, 10**14)),
                "productImage": None,
                "productName": product.title,
                "variantName": variant,
                "variantImage": None,
                "sku": f"{product.sku}-{product.variants.index(variant) + 1:02d}",
                "quantity": 1,
            }
        ]
    return {
        "trackingUrl": shipment.get("trackingUrl"),
        "trackingCode": shipment["trackingCode"],
        "carrierName": carrier,
        "eta": shipment.get("eta"),
        "serviceLevel": {"name": service, "token": service.lower().replace(" ", "_")},
        "order": {"id": str(zlib.crc32(order["name"].encode())), "name": order["name"]},
        "statusDetails": events[0],
        "events": events,
        "lineItems": line_items,
    }


def search(world: World, term: str) -> dict[str, Any] | None:
    """An order by name (with or without '#'), or the order holding a tracking code."""
    wanted = term.strip().casefold()
    for order in world.orders:
        name = order["name"].casefold()
        if wanted in (name, name.lstrip("#")):
            return {
                "name": order["name"],
                "shipments": [shipment_view(order, s) for s in order["shipments"]],
            }
    for order in world.orders:
        matching = [s for s in order["shipments"] if s["trackingCode"].casefold() == wanted]
        if matching:
            return {"name": order["name"], "shipments": [shipment_view(order, s) for s in matching]}
    return None


async def search_shipments(request: Request) -> Response:
    term = str(request.path_params.get("term", "")).strip()
    if not term:
        return json_response(NO_TERM, 400)
    world: World = request.app.state.world
    return json_response(search(world, term))
