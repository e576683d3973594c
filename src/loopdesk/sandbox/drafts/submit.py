"""The return a submitted draft becomes: a return object shaped like every other one in
the sandbox's returns list (`seed_returns.build_return`), state `open`.

- `outcome`: `refund` or `credit` (credit type `gift`) for credit items, `exchange`
  when every item is exchanged, `exchange+refund` / `exchange+credit` for a mix.
- `line_items[]` carry the order's line item ids (so those items are not eligible
  again), the reasons chosen, and `exchange_variant` for exchanged items;
  `exchanges[]` one row per exchange; the exchange fee is the `handling_fee`, the
  amount the customer paid the `upsell`.
- The return method decides the label: a `mail` method (mail-in label) gets a new
  prepaid label (`return_method` "prepaid_label"), any other (a drop-off such as
  Happy Returns) none yet, the label fields reading "N/A" and `return_method` the
  method's type.
- Each exchanged variant's inventory goes down by one.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from random import Random
from typing import Any

from loopdesk.sandbox.drafts import exchanges
from loopdesk.sandbox.drafts.model import Draft
from loopdesk.sandbox.drafts.money import decimal_string
from loopdesk.sandbox.drafts.render import View
from loopdesk.sandbox.drafts.totals import line_price
from loopdesk.sandbox.seed_returns import digits, status_page, tracking_code
from loopdesk.sandbox.world import World, iso, laravel

NO_LABEL = "N/A"
MAIL_IN = "mail"
# The returns list's `return_method` for a method type, where Loop's word differs.
RETURN_METHOD_OF_TYPE = {MAIL_IN: "prepaid_label"}
_LABEL_FILES = "https://easypost-files.s3.us-west-2.amazonaws.com/files/postage_label"
_LABEL_CARRIER = "USPS"


def outcome(draft: Draft) -> str:
    kinds = {item.return_type for item in draft.returning_items}
    paid_back = "refund" if draft.credit_type == "refund" else "credit"
    if kinds == {"exchange"}:
        return "exchange"
    return f"exchange+{paid_back}" if "exchange" in kinds else paid_back


def build_return(world: World, draft: Draft, seen: View, rid: str, now: datetime) -> dict[str, Any]:
    rng = Random(f"draft-return:{rid}")
    currency = seen.totals.currency

    def money(minor: int) -> str:
        return decimal_string(minor, currency)

    order = seen.order
    order_id, provider_order_id = world.order_ids(draft.order_name)
    number = draft.order_name.lstrip("#")
    reasons = {r["id"]: r for r in world.reasons}
    line_items, exchange_rows = [], []
    for index, item in enumerate(draft.returning_items):
        line = seen.line(item.order_line_item_id) or {"id": item.order_line_item_id}
        price = line_price(line, currency)
        cart = draft.cart_item_for(item.id)
        reason = reasons.get(item.reason_id, {})
        bought = world.find_variant(line["variant_id"]) if line.get("variant_id") else None
        sku = line.get("sku") or (bought[1].get("sku") if bought else None)
        line_items.append(
            {
                "line_item_id": str(line["id"]),
                "provider_line_item_id": digits(rng, 14),
                "product_id": _text(line.get("product_id")),
                "variant_id": _text(line.get("variant_id")),
                "sku": sku or f"SKU-{line.get('variant_id') or line['id']}",
                "title": _title(line.get("title", ""), line.get("variant_title")),
                "price": money(-price),
                "discount": money(0),
                "tax": money(0),
                "refund": money(price),
                "returned_at": laravel(now),
                "exchange_variant": str(cart.variant_id) if cart else "",
                "return_reason": reason.get("name"),
                "parent_return_reason": reason.get("parent"),
                "return_comment": "",
                "barcode": NO_LABEL,
                "outcome": "default",
                "provider_restock_location_id": None,
            }
        )
        if cart is not None:
            exchange_rows.append(_exchange(world, rng, cart.variant_id, cart.price, number, index))
            _take_one(world, cart.variant_id)
    worth = seen.totals
    paid_back = "refund" if draft.credit_type == "refund" else "credit"
    refund = worth.credit if paid_back == "refund" else 0
    credit = worth.credit if paid_back == "credit" else 0
    method = next((m for m in world.return_methods if m["id"] == draft.return_method_id), {})
    method_type = str(method.get("type", ""))
    label = _label(rng, rid, method_type, now)
    return {
        "id": rid,
        "state": "open",
        "created_at": iso(now),
        "updated_at": iso(now),
        "edited_at": None,
        "total": money(refund + credit),
        "order_id": order_id,
        "order_name": draft.order_name,
        "provider_order_id": provider_order_id,
        "order_number": number,
        "provider_order_number": number,
        "outcome": outcome(draft),
        "customer": order.get("customer_email", ""),
        "origin_country": "United States",
        "origin_country_code": "US",
        "multi_currency": False,
        "currency": currency,
        "return_product_total": money(worth.returned),
        "return_discount_total": money(0),
        "return_tax_total": money(0),
        "return_total": money(worth.returned),
        "return_credit_total": money(worth.exchanged + credit),
        "exchange_product_total": money(worth.exchanged),
        "exchange_discount_total": money(0),
        "exchange_tax_total": money(0),
        "exchange_total": money(worth.exchanged),
        "exchange_credit_total": money(worth.exchanged),
        "gift_card": money(0),
        "gift_card_order_name": None,
        "gift_card_order_id": None,
        "handling_fee": money(worth.exchange_fee),
        "refund": money(refund),
        "upsell": money(worth.amount_due if draft.difference_paid else 0),
        "line_items": line_items,
        "exchanges": exchange_rows,
        **label,
        "status_page_url": status_page(world.shop, rid),
        "destination_id": 7295,
        "return_method": RETURN_METHOD_OF_TYPE.get(method_type, method_type or None),
    }


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _title(title: str, variant: str | None) -> str:
    return f"{title} - {variant}" if variant else title


def _exchange(
    world: World, rng: Random, variant_id: int, price: int, number: str, index: int
) -> dict[str, Any]:
    currency = str(world.shop.get("currency", "USD"))
    product, variant = world.find_variant(variant_id) or ({}, {})
    return {
        "exchange_id": digits(rng, 8),
        "exchange_order_id": int(digits(rng, 13)),
        "exchange_order_name": f"EXC-{number}-{index + 1}",
        "product_id": _text(product.get("id")),
        "variant_id": str(variant_id),
        "sku": variant.get("sku") or f"SKU-{variant_id}",
        "type": "exchange",
        "title": _title(product.get("title", ""), variant.get("title")),
        "price": decimal_string(price, currency),
        "discount": decimal_string(0, currency),
        "tax": decimal_string(0, currency),
        "total": decimal_string(price, currency),
        "out_of_stock": False,
        "out_of_stock_resolution": None,
    }


def _take_one(world: World, variant_id: int) -> None:
    found = world.find_variant(variant_id)
    if found is not None and exchanges.is_available(found[1]):
        found[1]["inventory"] = int(found[1]["inventory"]) - 1


def _label(rng: Random, rid: str, method_type: str, now: datetime) -> dict[str, Any]:
    if method_type != MAIL_IN:
        return {
            "carrier": NO_LABEL,
            "tracking_number": NO_LABEL,
            "label_status": NO_LABEL,
            "label_url": None,
            "label_rate": None,
            "package_reference": None,
            "label_updated_at": NO_LABEL,
        }
    token = uuid.uuid5(uuid.NAMESPACE_URL, f"label/{rid}").hex
    return {
        "carrier": _LABEL_CARRIER,
        "tracking_number": tracking_code(rng, _LABEL_CARRIER),
        "label_status": "new",
        "label_url": f"{_LABEL_FILES}/{now.strftime('%Y%m%d')}/{token}.pdf",
        "label_rate": rng.randrange(650, 1800),
        "package_reference": f"LR-{rid}-1",
        "label_updated_at": iso(now),
    }
