"""What the seeded world gives Loop's Return Create API: the shop's products (with stock),
return reasons and return methods, line items on every order, and one customer per
draft-return scenario.

All of it is drawn from RNGs of its own (seeded by names and ids), so the returns,
orders and notes the main RNG hands out stay exactly as they were.

The scenario customers (`DRAFT_PERSONAS`, default policy: 30-day window):

| order | email | ZIP | placed | items -> what a draft can do |
|---|---|---|---|---|
| #7101 | refund.demo@example.com | 30301 | 10 days ago | Canvas Sneaker 10, Everyday Tote Sand: refund or store credit |
| #7102 | exchange.demo@example.com | 60601 | 8 days ago | Linen Shirt White / M: exchange for White / L (in stock) or Navy / M (sold out); Merino Crew Sweater Oat / M: Oat / S sold out, Charcoal / M costs 10.00 more |
| #7103 | upgrade.demo@example.com | 94103 | 6 days ago | Packable Rain Jacket Olive / M: Black / L costs 15.00 more (amount due, submit refused), Olive / L even |
| #7104 | finalsale.demo@example.com | 98101 | 5 days ago | Silk Scarf Stripe (final sale: not eligible), Running Short M (eligible) |
| #7105 | window.demo@example.com | 02108 | 45 days ago | Slim Chino 32 / 32, Wool Beanie Rust: past the window, nothing eligible |
"""  # noqa: E501

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from random import Random
from typing import Any

from loopdesk.sandbox.catalog import (
    CARRIERS,
    PRODUCTS,
    RETURN_REASONS,
    SOLD_OUT,
    VARIANT_PRICES,
)
from loopdesk.sandbox.seed_returns import (
    digits,
    product_id_of,
    sku_of,
    tracking_code,
    tracking_url,
    variant_id_of,
)
from loopdesk.sandbox.world import iso

FINAL_SALE = "final-sale"
MAIL_IN = {"id": 1, "name": "Prepaid mail-in label", "type": "mail"}
# Id 3 and the name as in Loop's fixture.
HAPPY_RETURNS = {"id": 3, "name": "Happy Returns", "type": "dropoff"}


def default_reasons() -> list[dict[str, Any]]:
    """The shop's return reasons: Loop's two levels, the child chosen, the parent shown."""
    return [
        {"id": number, "name": reason, "parent": parent}
        for number, (parent, reason) in enumerate(RETURN_REASONS, start=1)
    ]


def default_return_methods() -> list[dict[str, Any]]:
    return [dict(MAIL_IN), dict(HAPPY_RETURNS)]


def products() -> list[dict[str, Any]]:
    """The catalog in the data file's shape, ids as the seeded returns carry them."""
    found = []
    for p, product in enumerate(PRODUCTS):
        variants = []
        for v, title in enumerate(product.variants):
            variant_id = int(variant_id_of(p, v))
            stock = Random(f"inventory:{variant_id}").randint(3, 40)
            variants.append(
                {
                    "id": variant_id,
                    "title": title,
                    "price": VARIANT_PRICES.get((p, v), product.price),
                    "inventory": 0 if (p, v) in SOLD_OUT else stock,
                    "image": f"https://cdn.shopify.com/s/files/{product.sku.lower()}-{v + 1}.jpg",
                    "sku": sku_of(p, v),
                }
            )
        found.append(
            {
                "id": int(product_id_of(p)),
                "title": product.title,
                "variants": variants,
                "options": list(product.options),
                "image": f"https://cdn.shopify.com/s/files/{product.sku.lower()}.jpg",
                "product_type": product.product_type,
            }
        )
    return found


def line_item(
    item_id: int, product: int, variant: int, tags: tuple[str, ...] = (), price: str | None = None
) -> dict[str, Any]:
    return {
        "id": item_id,
        "title": PRODUCTS[product].title,
        "variant_title": PRODUCTS[product].variants[variant],
        "price": price or PRODUCTS[product].price,
        "product_id": int(product_id_of(product)),
        "variant_id": int(variant_id_of(product, variant)),
        "tags": list(tags),
    }


def _catalog_position(variant_id: str) -> tuple[int, int] | None:
    """(product, variant) index of a seeded variant id, None for any other."""
    for p, product in enumerate(PRODUCTS):
        for v in range(len(product.variants)):
            if variant_id_of(p, v) == variant_id:
                return p, v
    return None


def order_line_items(order: dict[str, Any], returns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What an order held: the items its returns took back (same ids), plus items never
    returned, some of them final sale; at least one per parcel."""
    rng = Random(f"order-items:{order['name']}")
    items: list[dict[str, Any]] = []
    for item in returns:
        for line in item.get("line_items") or []:
            position = _catalog_position(str(line.get("variant_id")))
            if position is None or any(i["id"] == int(line["line_item_id"]) for i in items):
                continue
            paid = str(abs(Decimal(str(line["price"]))))
            items.append(line_item(int(line["line_item_id"]), *position, price=paid))
    extra = rng.choices((0, 1), weights=(60, 40))[0] if items else rng.randint(1, 2)
    extra = max(extra, len(order["shipments"]) - len(items))
    for _ in range(extra):
        p = rng.randrange(len(PRODUCTS))
        v = rng.randrange(len(PRODUCTS[p].variants))
        tags = (FINAL_SALE,) if rng.random() < 0.12 else ()
        items.append(line_item(int(digits(rng, 9)), p, v, tags))
    return items


@dataclass(frozen=True)
class DraftPersona:
    email: str
    order_name: str
    zip: str
    days_ago: int
    items: tuple[tuple[int, int, tuple[str, ...]], ...]  # product, variant, tags
    note: str


DRAFT_PERSONAS = (
    DraftPersona(
        "refund.demo@example.com",
        "#7101",
        "30301",
        10,
        ((4, 2, ()), (7, 1, ())),
        "two eligible items: a refund, or store credit",
    ),
    DraftPersona(
        "exchange.demo@example.com",
        "#7102",
        "60601",
        8,
        ((1, 1, ()), (2, 1, ())),
        "exchanges: in stock, sold out, and one that costs more",
    ),
    DraftPersona(
        "upgrade.demo@example.com",
        "#7103",
        "94103",
        6,
        ((5, 0, ()),),
        "an exchange into a pricier variant leaves an amount due",
    ),
    DraftPersona(
        "finalsale.demo@example.com",
        "#7104",
        "98101",
        5,
        ((9, 1, (FINAL_SALE,)), (8, 1, ())),
        "a final-sale item next to an eligible one",
    ),
    DraftPersona(
        "window.demo@example.com",
        "#7105",
        "02108",
        45,
        ((3, 2, ()), (6, 0, ())),
        "placed past the return window: nothing eligible",
    ),
)


def persona_orders(rng: Random, now: datetime) -> list[dict[str, Any]]:
    """One delivered order per draft persona (line item ids `<order number>00N`)."""
    orders = []
    for persona in DRAFT_PERSONAS:
        created = now - timedelta(days=persona.days_ago, hours=6)
        carrier = rng.choice(tuple(CARRIERS))
        code = tracking_code(rng, carrier)
        number = int(persona.order_name.lstrip("#"))
        orders.append(
            {
                "name": persona.order_name,
                "customer_email": persona.email,
                "zip": persona.zip,
                "created_at": iso(created),
                "shipments": [
                    {
                        "trackingCode": code,
                        "status": "DELIVERED",
                        "carrierDisplayName": carrier,
                        "trackingUrl": tracking_url(carrier, code),
                        "eta": None,
                        "deliveredAt": iso(created + timedelta(days=3)),
                    }
                ],
                "line_items": [
                    line_item(number * 1000 + k, p, v, tags)
                    for k, (p, v, tags) in enumerate(persona.items, start=1)
                ],
            }
        )
    return orders


def persona_seed(seed: int) -> Random:
    return Random(zlib.crc32(f"draft-personas:{seed}".encode()))
