"""Webhook bodies in the shape Loop documents (reference section 7.5), built from a return.

A `return` topic body is the list object of section 2.1 without `updated_at` (neither
Loop's documented example nor the two real bodies on record carry it), plus `shop_id`,
`customer_detail`, `address`, `is_gift_return`, `refunds[]` and `labels[]`. Loop is
moving `id` from a string to an integer: the sandbox sends a return whose numeric id is
even with an integer `id` and every other return with the old string, so each receiver
meets both shapes, always the same one for a given return (a redelivery is identical).

Everything derived here (names, addresses) comes from RNGs seeded by the customer, so
the same world always sends the same bodies.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC
from decimal import Decimal, InvalidOperation
from random import Random
from typing import Any

from loopdesk.sandbox.catalog import FIRST_NAMES, LAST_NAMES
from loopdesk.sandbox.world import World, parse_ts

# Loop's docs show `shop_id` as 12345; sandbox data files carry no shop id of their own.
DEFAULT_SHOP_ID = 12345
NO_LABEL = "N/A"

_STREETS = ("Central Park W", "Market St", "Elm Ave", "Lakeshore Dr", "High St", "Oak Rd")
_CITIES = (
    ("New York", "New York"),
    ("Columbus", "Ohio"),
    ("Austin", "Texas"),
    ("Portland", "Oregon"),
    ("Denver", "Colorado"),
)


def shop_id(world: World) -> Any:
    return world.shop.get("id", DEFAULT_SHOP_ID)


def webhook_id(return_id: Any) -> Any:
    """The `id` as the newer payloads send it (an integer) for even ids, else a string."""
    text = str(return_id)
    if text.isascii() and text.isdigit() and int(text) % 2 == 0:
        return int(text)
    return text


def return_payload(
    world: World, item: Mapping[str, Any], *, with_updated_at: bool = False
) -> dict[str, Any]:
    """The body of a `return` topic webhook for `item` as it is now (a snapshot).

    `with_updated_at` keeps `updated_at` and the string id, the shape the sandbox sent
    before it followed Loop's documentation (for receivers' regression tests).
    """
    body = copy.deepcopy(dict(item))
    if not with_updated_at:
        body.pop("updated_at", None)
        body["id"] = webhook_id(item.get("id"))
    email = str(item.get("customer") or "")
    person = _person(world, email)
    body.setdefault("edited_at", None)
    body.setdefault("provider_order_external_id", item.get("provider_order_id"))
    body.setdefault("provider_order_sales_channel", "web")
    body.setdefault("customer_detail", {"email": email, **person["name"]})
    body.setdefault("address", _address(world, item, person))
    body.setdefault("is_gift_return", False)
    body.setdefault("refunds", _refunds(item))
    body.setdefault("labels", _labels(item))
    return {"shop_id": shop_id(world), **body}


def label_payload(world: World, item: Mapping[str, Any]) -> dict[str, Any]:
    """The body of a `label` topic webhook with the return's current label fields."""
    provider_order_id = item.get("provider_order_id")
    return {
        "shop_id": shop_id(world),
        "return_id": item.get("id"),
        "order_id": item.get("order_id"),
        # Loop's example sends the shop platform's order id as a number here.
        "provider_order_id": _integer_or_self(provider_order_id),
        "carrier": item.get("carrier"),
        "tracking_number": item.get("tracking_number"),
        "label_status": item.get("label_status"),
        "label_updated_at": item.get("label_updated_at"),
    }


def _person(world: World, email: str) -> dict[str, Any]:
    """Name and address seed of the person behind `email` (one per person, not per address)."""
    wanted = email.strip().casefold()
    primary = next((p[0] for p in world.customers if wanted in {e.casefold() for e in p}), wanted)
    rng = Random(f"person:{primary.casefold()}")
    name = {"first_name": rng.choice(FIRST_NAMES), "middle_name": None}
    name["last_name"] = rng.choice(LAST_NAMES)
    return {"name": name, "rng": rng}


def _address(world: World, item: Mapping[str, Any], person: dict[str, Any]) -> dict[str, Any]:
    rng: Random = person["rng"]
    city, state = rng.choice(_CITIES)
    order = world.find_order(str(item.get("order_name") or ""))
    first, last = person["name"]["first_name"], person["name"]["last_name"]
    return {
        "name": f"{first} {last}",
        "company": None,
        "address1": f"{rng.randrange(1, 999)} {rng.choice(_STREETS)}",
        "address2": None,
        "city": city,
        "state": state,
        # The order's ZIP, the one Loop's deep link checks.
        "zip": order["zip"] if order else f"{rng.randrange(10000, 99999)}",
        "country": "United States",
        "country_code": "US",
        "phone": f"{rng.randrange(201, 989)}555{rng.randrange(1000, 9999)}",
    }


def _refunds(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Money Loop paid back: one refund once a return with a refund is closed."""
    try:
        amount = Decimal(str(item.get("refund") or "0"))
    except InvalidOperation:
        return []
    if item.get("state") != "closed" or amount <= 0:
        return []
    return [
        {
            "gateway": "shopify_payments",
            "amount": str(item.get("refund")),
            "currency": item.get("currency") or "USD",
        }
    ]


def _labels(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    status = item.get("label_status")
    if not status or status == NO_LABEL:
        return []
    items = [_integer_or_self(line.get("line_item_id")) for line in _lines(item)]
    return [
        {
            "status": status,
            "updated_at": _label_stamp(item.get("label_updated_at")),
            "url": item.get("label_url"),
            "rate": item.get("label_rate"),
            "carrier": item.get("carrier"),
            "tracking_number": item.get("tracking_number"),
            "line_items": items,
        }
    ]


def _lines(item: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    lines = item.get("line_items")
    return [x for x in lines if isinstance(x, Mapping)] if isinstance(lines, list) else []


def _label_stamp(value: Any) -> Any:
    """Labels carry JavaScript-style stamps (`2020-10-29T16:07:35.000Z`) in Loop's bodies."""
    if not isinstance(value, str) or value == NO_LABEL:
        return None
    try:
        moment = parse_ts(value)
    except (ValueError, OverflowError):
        return value
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _integer_or_self(value: Any) -> Any:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return value
