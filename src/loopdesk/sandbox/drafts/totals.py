"""What a draft return is worth, owes and pays back, in integer minor units.

The returned items' value pays first for the exchange variants, then for the shop's
exchange fee (once per return holding an exchange, shop key `exchange_fee`); what is
left goes back as refund or store credit. What it does not cover is `amount_due`, and
until the customer pays it (the control route `/_sandbox/draft-returns/{id}/pay`)
`is_difference_covered` is false and Loop refuses the submit.

Two shapes, since the reference has both: Gladly's app reads `GET .../totals` as
`{"data": {"amount_due": {"amount", "currencyCode"}, "fees": {"exchange": {...}},
"is_difference_covered"}}` (`fees` is `{}` without a fee); Loop documents
`draft_return.totals.amount_due` as `{amount, currency}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loopdesk.sandbox.drafts.eligibility import line_items
from loopdesk.sandbox.drafts.model import Draft
from loopdesk.sandbox.drafts.money import minor_units
from loopdesk.sandbox.world import World


@dataclass(frozen=True)
class Totals:
    currency: str
    returned: int
    exchanged: int
    exchange_fee: int
    amount_due: int
    credit: int
    is_difference_covered: bool


def line_price(line: dict[str, Any], currency: str) -> int:
    return minor_units(str(line.get("price") or "0"), currency)


def compute(world: World, draft: Draft) -> Totals:
    currency = str(world.shop.get("currency", "USD"))
    order = world.find_order(draft.order_name) or {}
    prices = {line["id"]: line_price(line, currency) for line in line_items(order)}
    returned = sum(prices.get(i.order_line_item_id, 0) for i in draft.returning_items)
    exchanged = sum(c.price for c in draft.cart_items)
    exchanging = any(i.return_type == "exchange" for i in draft.returning_items)
    fee = minor_units(str(world.shop.get("exchange_fee") or "0"), currency) if exchanging else 0
    balance = returned - exchanged - fee
    due = max(0, -balance)
    return Totals(
        currency=currency,
        returned=returned,
        exchanged=exchanged,
        exchange_fee=fee,
        amount_due=due,
        credit=max(0, balance),
        is_difference_covered=due == 0 or draft.difference_paid,
    )


def _money(amount: int, currency: str, key: str) -> dict[str, Any]:
    return {"amount": amount, key: currency}


def _body(totals: Totals, key: str) -> dict[str, Any]:
    fees = {}
    if totals.exchange_fee:
        fees["exchange"] = _money(totals.exchange_fee, totals.currency, key)
    return {
        "amount_due": _money(totals.amount_due, totals.currency, key),
        "fees": fees,
        "is_difference_covered": totals.is_difference_covered,
    }


def peer_body(totals: Totals) -> dict[str, Any]:
    """`GET .../totals` as Gladly's app 1.6.2 reads it."""
    return {"data": _body(totals, "currencyCode")}


def documented(totals: Totals) -> dict[str, Any]:
    """`draft_return.totals` as Loop documents it (`currency`, not `currencyCode`)."""
    return _body(totals, "currency")
