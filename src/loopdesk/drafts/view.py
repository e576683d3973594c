"""A draft return as loopdesk's surfaces show it: one camelCase JSON object.

Pure: built from the domain's `Draft` (and its totals, and the return's status page
once submitted). Ids are decimal strings, amounts integers in minor units. `nextSteps`
and `links` are Loop's: the only word on what may follow.
"""

from __future__ import annotations

from typing import Any

from loopdesk.domain.drafts import Draft, DraftTotals, Money, links_output, next_steps


def draft_view(
    draft: Draft,
    *,
    order_name: str | None = None,
    totals: DraftTotals | None = None,
    status_page_url: str | None = None,
) -> dict[str, Any]:
    """`totals`: a read of `GET .../totals`, else the draft's own `totals` (if sent)."""
    order = draft.order
    eligible = {i.order_line_item_id for i in draft.eligible_items}
    refused = {i.order_line_item_id: i.ineligibility_code for i in draft.ineligible_items}
    exchanged = {
        c.exchange_for_returning_item_id: c.variant_id
        for c in draft.cart_items
        if c.exchange_for_returning_item_id is not None
    }
    worth = totals or draft.totals
    return {
        "draftId": draft.id or "",
        "state": draft.state,
        "orderName": order_name or (order.name if order else None),
        "currency": _currency(draft, worth),
        "lineItems": [
            {
                "id": item.id,
                "title": item.title,
                "variantTitle": item.variant_title,
                "price": item.price,
                "image": item.image,
                "eligible": item.id in eligible,
                "ineligibilityCode": refused.get(item.id),
            }
            for item in (order.line_items if order else ())
        ],
        "returningItems": [
            {
                "id": item.id,
                "orderLineItemId": item.order_line_item_id,
                "returnType": item.return_type,
                "reasonId": item.reason_id,
                "exchangeVariantId": exchanged.get(item.id),
            }
            for item in draft.returning_items
        ],
        "reasons": [{"id": r.id, "name": r.name} for r in draft.reasons],
        "creditType": draft.credit_type,
        "returnMethodId": draft.return_method_id,
        "exchangeOptions": [
            {
                "returningItemId": entry.returning_item_id,
                "productOptions": [
                    {"name": o.name, "values": list(o.values)} for o in entry.product_options
                ],
                "variants": [
                    {
                        "variantId": v.variant_id,
                        "title": v.title,
                        "variantTitle": v.variant_title,
                        "price": v.price,
                        "currency": v.currency,
                        "isAvailable": v.is_available,
                        "options": [{"name": o.name, "value": o.value} for o in v.options],
                        "image": v.image,
                    }
                    for v in entry.variants
                ],
            }
            for entry in draft.exchange_options
        ],
        "returnMethodOptions": [
            {"id": m.id, "name": m.name, "type": m.type} for m in draft.return_method_options
        ],
        "totals": None if worth is None else totals_view(worth),
        "returnId": draft.return_id,
        "statusPageUrl": status_page_url,
        "nextSteps": list(next_steps(draft)),
        "links": links_output(draft),
        # A partial failure: Loop did what it could and says what it could not.
        "errors": [{"code": e.get("code"), "message": e.get("message")} for e in draft.errors],
    }


def totals_view(totals: DraftTotals) -> dict[str, Any]:
    return {
        "amountDue": money_view(totals.amount_due),
        "exchangeFee": money_view(totals.exchange_fee),
        "isDifferenceCovered": totals.is_difference_covered,
    }


def money_view(money: Money | None) -> dict[str, Any] | None:
    return None if money is None else {"amount": money.amount, "currency": money.currency}


def _currency(draft: Draft, totals: DraftTotals | None) -> str | None:
    if draft.order is not None and draft.order.currency:
        return draft.order.currency
    if totals is not None and totals.amount_due is not None:
        return totals.amount_due.currency
    return None
