"""Each action's result, and a failure, as Gladly's Loop Returns app (1.6.2) gives them.

camelCase keys; ids as decimal strings ("0" when absent, as the peer's integer
conversion reads them); amounts as integers in minor units.
"""

from __future__ import annotations

from typing import Any

from loopdesk.domain.drafts.failures import NO_RETURNING_ITEM, UNAUTHORIZED_MESSAGE
from loopdesk.domain.drafts.models import (
    Draft,
    DraftTotals,
    ExchangeVariant,
    Money,
    ReturnDetails,
    ReturningItem,
)
from loopdesk.domain.drafts.values import input_id
from loopdesk.errors import InvalidUpstreamData, LoopAuthError, LoopdeskError, LoopValidationError


def check_eligibility_output(draft: Draft) -> dict[str, Any]:
    line_items = draft.order.line_items if draft.order else ()
    return {
        "draftReturnId": _out_id(draft.id),
        "state": draft.state,
        "itemsEligible": [
            {"orderLineItemId": _out_id(i.order_line_item_id)} for i in draft.eligible_items
        ],
        "itemsNotEligible": [
            {
                "orderLineItemId": _out_id(i.order_line_item_id),
                "ineligibilityCode": i.ineligibility_code,
            }
            for i in draft.ineligible_items
        ],
        "lineItems": [
            {
                "id": _out_id(item.id),
                "title": item.title,
                "variantTitle": item.variant_title,
                "price": item.price,
                "image": item.image,
                "providerProductId": _out_id(item.provider_product_id),
                "providerVariantId": _out_id(item.provider_variant_id),
            }
            for item in line_items
        ],
        "returnMethodOptions": [
            {"id": _out_id(m.id), "name": m.name, "type": m.type}
            for m in draft.return_method_options
        ],
    }


def returning_item_for(draft: Draft, order_line_item_id: str | int) -> ReturningItem | None:
    """The returning item Loop made for an order line item (ids compared as integers)."""
    wanted = input_id(order_line_item_id, "order_line_item_id")
    for item in draft.returning_items:
        if item.order_line_item_id is not None and int(item.order_line_item_id) == wanted:
            return item
    return None


def add_return_item_output(draft: Draft, order_line_item_id: str | int) -> dict[str, Any]:
    item = returning_item_for(draft, order_line_item_id)
    if item is None:
        wanted = input_id(order_line_item_id, "order_line_item_id")
        raise InvalidUpstreamData(
            NO_RETURNING_ITEM.format(wanted),
            details={"orderLineItemId": str(wanted), "applied": True},
        )
    return {"returningItemId": item.id, "orderLineItemId": _out_id(item.order_line_item_id)}


def step_output(draft: Draft, default_state: str = "ok") -> dict[str, Any]:
    """`{ok, state}`: what set_return_reason, set_return_type, set_credit_type,
    finalize_items and select_return_method answer."""
    return {"ok": True, "state": draft.state or default_state}


def set_return_reason_output(draft: Draft) -> dict[str, Any]:
    return step_output(draft)


def set_return_type_output(draft: Draft) -> dict[str, Any]:
    return step_output(draft)


def set_credit_type_output(draft: Draft) -> dict[str, Any]:
    return step_output(draft)


def finalize_items_output(draft: Draft) -> dict[str, Any]:
    return step_output(draft)


def select_return_method_output(draft: Draft) -> dict[str, Any]:
    return step_output(draft)


def cancel_draft_return_output(draft: Draft) -> dict[str, Any]:
    return step_output(draft, "cancelled")


def add_exchange_item_output(draft: Draft, returning_item_id: str | int) -> dict[str, Any]:
    wanted = input_id(returning_item_id, "returning_item_id")
    variant = next(
        (
            c.variant_id
            for c in draft.cart_items
            if c.exchange_for_returning_item_id is not None
            and int(c.exchange_for_returning_item_id) == wanted
        ),
        None,
    )
    return {**step_output(draft), "exchangeVariantId": _out_id(variant)}


def submit_return_output(draft: Draft) -> dict[str, Any]:
    return {**step_output(draft, "submitted"), "returnId": _out_id(draft.return_id)}


def get_draft_return_output(draft: Draft) -> dict[str, Any]:
    return {
        "draftReturnId": _out_id(draft.id),
        "state": draft.state,
        "returningItems": [
            {
                "id": item.id,
                "orderLineItemId": _out_id(item.order_line_item_id),
                "returnType": item.return_type,
            }
            for item in draft.returning_items
        ],
        "links": links_output(draft),
        "exchangeOptions": [
            {
                "returningItemId": entry.returning_item_id,
                "productOptions": [
                    {"name": o.name, "values": list(o.values)} for o in entry.product_options
                ],
                "variants": [_variant_output(v) for v in entry.variants],
            }
            for entry in draft.exchange_options
        ],
    }


def links_output(draft: Draft) -> list[dict[str, Any]]:
    """The draft's next steps as every surface shows them (camelCase)."""
    return [
        {"rel": link.rel, "href": link.href, "method": link.method, "isRequired": link.is_required}
        for link in draft.links
    ]


def _variant_output(variant: ExchangeVariant) -> dict[str, Any]:
    return {
        "productId": _out_id(variant.product_id),
        "variantId": _out_id(variant.variant_id),
        "title": variant.title,
        "variantTitle": variant.variant_title,
        "productType": variant.product_type,
        "options": [{"name": o.name, "value": o.value} for o in variant.options],
        "image": variant.image,
        "price": variant.price,
        "currency": variant.currency,
        "isAvailable": variant.is_available,
    }


def money_output(money: Money | None) -> dict[str, Any] | None:
    return None if money is None else {"amount": money.amount, "currencyCode": money.currency}


def get_draft_totals_output(totals: DraftTotals) -> dict[str, Any]:
    return {
        "amountDue": money_output(totals.amount_due),
        "exchangeFee": money_output(totals.exchange_fee),
        "isDifferenceCovered": totals.is_difference_covered,
    }


def get_return_details_output(details: ReturnDetails) -> dict[str, Any]:
    return {
        "id": details.id,
        "state": details.state,
        "orderName": details.order_name,
        "orderNumber": details.order_number,
        "customerEmail": details.customer_email,
        "currency": details.currency,
        "returnTotal": details.return_total,
        "refund": details.refund,
        "exchange": details.exchange,
        "giftCard": details.gift_card,
        "handlingFee": details.handling_fee,
        "carrier": details.carrier,
        "labelStatus": details.label_status,
        "labelUrl": details.label_url,
        "trackingNumber": details.tracking_number,
        "statusPageUrl": details.status_page_url,
        "type": details.type,
        "lineItems": [
            {
                "id": _out_id(item.id),
                "title": item.title,
                "sku": item.sku,
                "quantity": item.quantity,
                "refundAmount": item.refund_amount,
                "condition": item.condition,
                "disposition": item.disposition,
            }
            for item in details.line_items
        ],
    }


def error_output(exc: LoopdeskError) -> dict[str, Any] | str:
    """A failed action as the peer renders it: a 422 is a normal result `{"errors": [...]}`,
    anything else the action error's text (`LoopDraftsClient` words its errors so)."""
    if isinstance(exc, LoopValidationError):
        return {"errors": exc.errors}
    if isinstance(exc, LoopAuthError) and exc.status == 401:
        return UNAUTHORIZED_MESSAGE
    return exc.message


def _out_id(value: str | None) -> str:
    """The peer reads every id through an integer: an absent one reads "0"."""
    return value if value is not None else "0"
