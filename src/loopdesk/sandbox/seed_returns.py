"""Seeded return objects, shaped exactly like the `data` items of Loop's GET /api/v2/returns.

Shape rules (reference section 2.1): money is 2-dp strings, line item `price` is
negative, ids are strings except `exchange_order_id`/`destination_id`, and a return
without a label says "N/A" in all four label fields. Totals are computed from the line
items so clients that cross-check them see a consistent world.

Every field the reference lists is present, and each optional one (`edited_at`,
`return_method`, `label_url`, `label_rate`, `package_reference`, `gift_card_order_*`,
`provider_restock_location_id` ...) is non-null on some returns, so clients meet real
values and not only nulls. Those are drawn from an RNG seeded by the return id, so
adding them never shifts the ids and contents the main RNG hands out.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from random import Random
from typing import Any

from loopdesk.sandbox.catalog import (
    CARRIERS,
    DESTINATION_IDS,
    NOTE_TEXTS,
    OUT_OF_STOCK_RESOLUTIONS,
    PRODUCTS,
    RETURN_COMMENTS,
    RETURN_LABEL_CARRIERS,
    RETURN_REASONS,
)
from loopdesk.sandbox.world import iso, laravel

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
NO_LABEL = "N/A"

# How long ago (days) a return in each state was created: open returns are recent,
# expired ones older than the 28 days a label lives.
_AGE_DAYS = {"open": (1, 25), "expired": (35, 300)}
_DEFAULT_AGE_DAYS = (2, 330)


@dataclass(frozen=True)
class ReturnPlan:
    state: str
    outcome: str
    label_status: str
    customer: str
    out_of_stock: bool
    created: datetime
    updated: datetime
    label_updated: datetime | None


@dataclass(frozen=True)
class OrderRef:
    name: str
    loop_id: str
    provider_id: str

    @property
    def number(self) -> str:
        return self.name.lstrip("#")


def money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def digits(rng: Random, count: int) -> str:
    """A random number with exactly `count` digits (no leading zero)."""
    return str(rng.randrange(10 ** (count - 1), 10**count))


def tracking_code(rng: Random, carrier: str) -> str:
    """A tracking number in the carrier's usual format."""
    if carrier == "UPS":
        alnum = "".join(rng.choice("0123456789ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(6))
        return f"1Z{alnum}03{digits(rng, 8)}"
    if carrier == "USPS":
        return "9400" + digits(rng, 18)
    if carrier == "FedEx":
        return digits(rng, 12)
    return digits(rng, 10)


def tracking_url(carrier: str, code: str) -> str:
    return CARRIERS[carrier][0] + code


def plan_return(
    rng: Random,
    now: datetime,
    *,
    state: str,
    outcome: str,
    label_status: str,
    customer: str,
    out_of_stock: bool,
    created: datetime | None = None,
) -> ReturnPlan:
    """Timestamps that fit the state: never in the future, updates after creation."""
    if created is None:
        low, high = _AGE_DAYS.get(state, _DEFAULT_AGE_DAYS)
        created = now - timedelta(days=rng.randint(low, high), seconds=rng.randrange(86_400))
    created = created.replace(microsecond=0)
    if state == "expired":
        updated = created + timedelta(days=28, seconds=rng.randrange(2 * 86_400))
    else:
        span = min(now - created, timedelta(days=14))
        updated = created + span * rng.uniform(0.05, 0.95)
    updated = updated.replace(microsecond=0)
    label_updated = None
    if label_status != NO_LABEL:
        # A label's last event precedes closing or review; otherwise it is the last change.
        share = rng.uniform(0.3, 1.0) if state in ("closed", "review") else 1.0
        label_updated = (created + (updated - created) * share).replace(microsecond=0)
    return ReturnPlan(
        state, outcome, label_status, customer, out_of_stock, created, updated, label_updated
    )


def build_notes(rng: Random, plan: ReturnPlan, count: int) -> list[tuple[datetime, str]]:
    """`count` notes written between the return's creation and its last update."""
    span = plan.updated - plan.created
    moments = sorted(plan.created + span * rng.random() for _ in range(count))
    return [(m.replace(microsecond=0), rng.choice(NOTE_TEXTS)) for m in moments]


def product_id_of(product: int) -> str:
    return str(7469735116951 + product * 1_000)


def variant_id_of(product: int, variant: int) -> str:
    return str(41845504639127 + product * 100 + variant)


def sku_of(product: int, variant: int) -> str:
    return f"{PRODUCTS[product].sku}-{variant + 1:02d}"


def title_of(product: int, variant: int) -> str:
    return f"{PRODUCTS[product].title} - {PRODUCTS[product].variants[variant]}"


def build_return(
    rng: Random, *, rid: str, plan: ReturnPlan, order: OrderRef, shop: dict[str, Any]
) -> dict[str, Any]:
    extra = Random(f"return-extras:{rid}")
    exchanging = plan.outcome.startswith("exchange")
    # A split outcome needs at least one item exchanged and one paid back.
    split = plan.outcome in ("exchange+refund", "exchange+credit")
    count = rng.randint(2, 3) if split else rng.choice((1, 1, 1, 2, 3))
    exchanged = count if plan.outcome == "exchange" else (1 if exchanging else 0)
    line_items: list[dict[str, Any]] = []
    exchanges: list[dict[str, Any]] = []
    for index, product in enumerate(rng.sample(range(len(PRODUCTS)), count)):
        variants = len(PRODUCTS[product].variants)
        variant = rng.randrange(variants)
        price = Decimal(PRODUCTS[product].price)
        discount = (price * Decimal("0.10")).quantize(CENT) if rng.random() < 0.25 else ZERO
        tax = ((price - discount) * Decimal("0.08")).quantize(CENT) if rng.random() < 0.5 else ZERO
        exchange_variant = ""
        if index < exchanged:
            # Even exchange: another variant of the same product at the same price.
            new_variant = (variant + 1 + rng.randrange(variants - 1)) % variants
            exchange_variant = variant_id_of(product, new_variant)
            out_of_stock = plan.out_of_stock and index == 0
            exchanges.append(
                {
                    "exchange_id": digits(rng, 8),
                    "exchange_order_id": int(digits(rng, 13)),
                    "exchange_order_name": f"EXC-{order.number}-{index + 1}",
                    "product_id": product_id_of(product),
                    "variant_id": exchange_variant,
                    "sku": sku_of(product, new_variant),
                    "type": "exchange",
                    "title": title_of(product, new_variant),
                    "price": money(price),
                    "discount": money(discount),
                    "tax": money(tax),
                    "total": money(price - discount + tax),
                    "out_of_stock": out_of_stock,
                    "out_of_stock_resolution": (
                        rng.choice(OUT_OF_STOCK_RESOLUTIONS) if out_of_stock else None
                    ),
                }
            )
        parent_reason, reason = rng.choice(RETURN_REASONS)
        line_items.append(
            {
                "line_item_id": digits(rng, 9),
                "provider_line_item_id": digits(rng, 14),
                "product_id": product_id_of(product),
                "variant_id": variant_id_of(product, variant),
                "sku": sku_of(product, variant),
                "title": title_of(product, variant),
                "price": money(-price),
                "discount": money(discount),
                "tax": money(tax),
                "refund": money(price - discount + tax),
                "returned_at": laravel(plan.created),
                "exchange_variant": exchange_variant,
                "return_reason": reason,
                "parent_return_reason": parent_reason,
                "return_comment": rng.choice(RETURN_COMMENTS) if rng.random() < 0.2 else "",
                # Most shops print no barcode on return slips; some print the item's UPC.
                "barcode": digits(extra, 12) if extra.random() < 0.3 else NO_LABEL,
                "outcome": "default",
                # Set once the item is back in stock at a location (label delivered).
                "provider_restock_location_id": (
                    digits(extra, 11) if plan.label_status == "delivered" else None
                ),
            }
        )
    totals = _totals(rng, plan.outcome, line_items, exchanges)
    if plan.state == "closed" and plan.outcome.endswith("gift_card"):
        # Loop issues a gift card as an order of its own once the return is processed.
        totals["gift_card_order_name"] = f"#GC-{order.number}"
        totals["gift_card_order_id"] = digits(extra, 13)
    label = _label(rng, plan)
    country, country_code = extra.choice(_ORIGINS)
    # Key order follows Loop's own bodies, for anyone diffing against a fixture.
    return {
        "id": rid,
        "state": plan.state,
        "created_at": iso(plan.created),
        "updated_at": iso(plan.updated),
        "edited_at": _edited_at(extra, plan),
        "total": totals.pop("total"),
        "order_id": order.loop_id,
        "order_name": order.name,
        "provider_order_id": order.provider_id,
        "order_number": order.number,
        "provider_order_number": order.number,
        "outcome": plan.outcome,
        "customer": plan.customer,
        "origin_country": country,
        "origin_country_code": country_code,
        "multi_currency": False,
        "currency": shop.get("currency", "USD"),
        **totals,
        "line_items": line_items,
        "exchanges": exchanges,
        "carrier": label["carrier"],
        "tracking_number": label["tracking_number"],
        "label_status": label["label_status"],
        **_label_documents(extra, rid, plan),
        "status_page_url": status_page(shop, rid),
        "label_updated_at": label["label_updated_at"],
        "destination_id": rng.choice(DESTINATION_IDS),
        # A return with a label ships with Loop's prepaid label; the rest need none.
        "return_method": None if plan.label_updated is None else "prepaid_label",
    }


_LABEL_FILES = "https://easypost-files.s3.us-west-2.amazonaws.com/files/postage_label"
# Where returns ship from: mostly the shop's own country.
_ORIGINS = (("United States", "US"),) * 9 + (("Canada", "CA"),)


def _edited_at(extra: Random, plan: ReturnPlan) -> str | None:
    """A quarter of returns were edited (an item changed) between creation and update."""
    if plan.updated <= plan.created or extra.random() >= 0.25:
        return None
    moment = plan.created + (plan.updated - plan.created) * extra.uniform(0.1, 0.9)
    return iso(moment.replace(microsecond=0))


def _label_documents(extra: Random, rid: str, plan: ReturnPlan) -> dict[str, Any]:
    """The label's PDF, its rate in cents and the package reference; null without one."""
    if plan.label_updated is None:
        return {"label_url": None, "label_rate": None, "package_reference": None}
    token = uuid.uuid5(uuid.NAMESPACE_URL, f"label/{rid}").hex
    day = plan.label_updated.strftime("%Y%m%d")
    return {
        "label_url": f"{_LABEL_FILES}/{day}/{token}.pdf",
        "label_rate": extra.randrange(650, 1800),
        "package_reference": f"LR-{rid}-1",
    }


def _totals(
    rng: Random, outcome: str, line_items: list[dict[str, Any]], exchanges: list[dict[str, Any]]
) -> dict[str, Any]:
    """Every money field, derived from the items so the sums always agree."""

    def total(rows: list[dict[str, Any]], key: str) -> Decimal:
        return sum((abs(Decimal(r[key])) for r in rows), ZERO)

    returned = total(line_items, "price") - total(line_items, "discount")
    returned += total(line_items, "tax")
    exchanged = total(exchanges, "total")
    # Exchanges are paid for with return credit; what is left goes back per the outcome.
    left = returned - exchanged
    paid_back = outcome.rsplit("+", 1)[-1]
    # Some shops charge a handling fee on money paid back, never on credit.
    charged = paid_back in ("refund", "gift_card") and left > 20 and rng.random() < 0.5
    fee = Decimal("5.00") if charged else ZERO
    refund = left - fee if paid_back == "refund" else ZERO
    gift_card = left - fee if paid_back == "gift_card" else ZERO
    credit = left if paid_back in ("credit", "store_credit") else ZERO
    return {
        "total": money(refund + gift_card + credit),
        "return_product_total": money(total(line_items, "price")),
        "return_discount_total": money(total(line_items, "discount")),
        "return_tax_total": money(total(line_items, "tax")),
        "return_total": money(returned),
        "return_credit_total": money(exchanged + credit),
        "exchange_product_total": money(total(exchanges, "price")),
        "exchange_discount_total": money(total(exchanges, "discount")),
        "exchange_tax_total": money(total(exchanges, "tax")),
        "exchange_total": money(exchanged),
        "exchange_credit_total": money(exchanged),
        "gift_card": money(gift_card),
        "gift_card_order_name": None,
        "gift_card_order_id": None,
        "handling_fee": money(fee),
        "refund": money(refund),
        "upsell": money(ZERO),
    }


def _label(rng: Random, plan: ReturnPlan) -> dict[str, str]:
    if plan.label_updated is None:
        return {
            "carrier": NO_LABEL,
            "tracking_number": NO_LABEL,
            "label_status": NO_LABEL,
            "label_updated_at": NO_LABEL,
        }
    carrier = rng.choice(RETURN_LABEL_CARRIERS)
    return {
        "carrier": carrier,
        "tracking_number": tracking_code(rng, carrier),
        "label_status": plan.label_status,
        "label_updated_at": iso(plan.label_updated),
    }


def status_page(shop: dict[str, Any], rid: str) -> str:
    domain = shop.get("domain", "company.loopreturns.com")
    token = uuid.uuid5(uuid.NAMESPACE_URL, f"https://{domain}/return/{rid}")
    return f"https://{domain}/#/return/{token}"
