"""`/warehouse/return/details` as the peer reads it: camelCase, amounts in minor units."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from loopdesk.domain.drafts.failures import NO_RETURN_FOUND, draft_failure_text
from loopdesk.domain.drafts.models import ReturnDetails, ReturnDetailsLineItem
from loopdesk.domain.drafts.values import (
    as_object,
    as_objects,
    read_amount,
    read_id,
    read_text,
)
from loopdesk.domain.money import exponent
from loopdesk.errors import InvalidUpstreamData


def parse_return_details(body: Any) -> ReturnDetails:
    """A 2xx `/warehouse/return/details` body; one without `id` found no return."""
    root = as_object(body, "return details")
    return_id = read_id(root.get("id"), "id")
    if return_id is None:
        raise InvalidUpstreamData(no_return_found_message(body))
    currency = read_text(root.get("currency"), "currency")
    # The peer reads `customer_email` and line item `id`; Loop's docs name them
    # `customer` and `line_item_id`.
    email = root.get("customer_email", root.get("customer"))
    return ReturnDetails(
        id=return_id,
        state=read_text(root.get("state"), "state"),
        order_name=read_text(root.get("order_name"), "order_name"),
        order_number=read_text(root.get("order_number"), "order_number"),
        customer_email=read_text(email, "customer_email"),
        currency=currency,
        return_total=_details_amount(root.get("return_total"), currency, "return_total"),
        refund=_details_amount(root.get("refund"), currency, "refund"),
        exchange=_details_amount(root.get("exchange"), currency, "exchange"),
        gift_card=_details_amount(root.get("gift_card"), currency, "gift_card"),
        handling_fee=_details_amount(root.get("handling_fee"), currency, "handling_fee"),
        carrier=read_text(root.get("carrier"), "carrier"),
        label_status=read_text(root.get("label_status"), "label_status"),
        label_url=read_text(root.get("label_url"), "label_url"),
        tracking_number=read_text(root.get("tracking_number"), "tracking_number"),
        status_page_url=read_text(root.get("status_page_url"), "status_page_url"),
        type=read_text(root.get("type"), "type"),
        line_items=tuple(
            ReturnDetailsLineItem(
                id=read_id(item.get("id", item.get("line_item_id")), f"{at}.id"),
                title=read_text(item.get("title"), f"{at}.title"),
                sku=read_text(item.get("sku"), f"{at}.sku"),
                quantity=read_amount(item.get("quantity"), f"{at}.quantity") or 0,
                refund_amount=_details_amount(item.get("refund"), currency, f"{at}.refund"),
                condition=read_text(item.get("condition"), f"{at}.condition"),
                disposition=read_text(item.get("disposition"), f"{at}.disposition"),
            )
            for at, item in as_objects(root.get("line_items"), "line_items")
        ),
    )


def has_return(body: Any) -> bool:
    """False for a 2xx details body that names no return (Loop's "not found" answer)."""
    return isinstance(body, dict) and body.get("id") not in (None, "")


def no_return_found_message(body: Any) -> str:
    return NO_RETURN_FOUND.format(draft_failure_text(body))


def _details_amount(value: Any, currency: str | None, at: str) -> int:
    """An amount in minor units; 0 when absent (the peer's rule).

    Numbers are the peer's integer minor units. Text is Loop's documented details shape
    (`"78.00"`, major units of the return's currency), scaled exactly by that currency's
    minor-unit digits; text that does not scale to a whole number is refused.
    """
    if not isinstance(value, str):
        return read_amount(value, at) or 0
    text = value.strip()
    if not text:
        return 0
    try:
        major = Decimal(text)
    except InvalidOperation:
        raise InvalidUpstreamData(f"{at}: expected an amount, got {text[:40]!r}") from None
    code = (currency or "").upper()
    digits = exponent(code)
    if not major.is_finite() or major.adjusted() > 18:
        raise InvalidUpstreamData(f"{at}: expected an amount, got {text[:40]!r}")
    minor = major.scaleb(digits)
    if minor != minor.to_integral_value():
        raise InvalidUpstreamData(
            f"{at}: {text[:40]!r} is not a whole number of minor units of {code or 'the currency'}"
        )
    return int(minor)
