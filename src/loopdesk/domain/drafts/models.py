"""The draft return, its parts and the return details, as plain frozen values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Money:
    amount: int  # minor units
    currency: str | None


@dataclass(frozen=True)
class Link:
    """One next legal step: Loop's `links[]` element, or a HAL-Forms link + template."""

    rel: str
    href: str
    method: str
    is_required: bool = False
    description: str | None = None
    fields: Any = None  # Loop's field metadata (HAL-Forms: the template's `properties`)


@dataclass(frozen=True)
class ReturningItem:
    id: str
    order_line_item_id: str | None
    return_type: str | None
    reason_id: str | None = None  # once set, when Loop sends it


@dataclass(frozen=True)
class Reason:
    """One of the shop's return reasons (`context.return_reasons`)."""

    id: str
    name: str | None


@dataclass(frozen=True)
class CartItem:
    """An item the customer gets in exchange, for one returning item."""

    id: str | None
    variant_id: str | None
    exchange_type: str | None
    exchange_for_returning_item_id: str | None
    variant_title: str | None


@dataclass(frozen=True)
class ProductOption:
    name: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class VariantOption:
    name: str
    value: str


@dataclass(frozen=True)
class ExchangeVariant:
    product_id: str | None
    variant_id: str | None
    title: str | None
    variant_title: str | None
    product_type: str | None
    options: tuple[VariantOption, ...]  # sorted by name
    image: str | None
    price: int | None  # minor units; None when Loop sends none
    currency: str | None
    is_available: bool


@dataclass(frozen=True)
class ExchangeOptions:
    """What one returning item may be exchanged for."""

    returning_item_id: str
    product_options: tuple[ProductOption, ...]
    variants: tuple[ExchangeVariant, ...]


@dataclass(frozen=True)
class EligibleItem:
    order_line_item_id: str | None


@dataclass(frozen=True)
class IneligibleItem:
    order_line_item_id: str | None
    ineligibility_code: str | None  # e.g. "final-sale"


@dataclass(frozen=True)
class OrderLineItem:
    id: str | None
    title: str | None
    variant_title: str | None
    price: int  # minor units; 0 when Loop sends none (the peer's rule)
    image: str | None
    provider_product_id: str | None
    provider_variant_id: str | None


@dataclass(frozen=True)
class OrderSummary:
    id: str | None
    currency: str | None
    line_items: tuple[OrderLineItem, ...]
    name: str | None = None  # the shop's order name ("#1234"), when Loop sends it


@dataclass(frozen=True)
class ReturnMethodOption:
    id: str | None
    name: str | None
    type: str | None  # e.g. "dropoff"


@dataclass(frozen=True)
class DraftTotals:
    amount_due: Money | None
    exchange_fee: Money | None
    is_difference_covered: bool


@dataclass(frozen=True)
class Draft:
    """A draft return as any draft endpoint answers it.

    Several answers carry only part of it (`{"draft_return": {"state": ...}}`), so every
    field may be absent: `id` None, empty tuples.
    """

    id: str | None
    state: str | None  # passed through: the peer's fixtures use their own state names
    returning_items: tuple[ReturningItem, ...] = ()
    cart_items: tuple[CartItem, ...] = ()
    links: tuple[Link, ...] = ()
    exchange_options: tuple[ExchangeOptions, ...] = ()
    eligible_items: tuple[EligibleItem, ...] = ()
    ineligible_items: tuple[IneligibleItem, ...] = ()
    order: OrderSummary | None = None
    return_method_options: tuple[ReturnMethodOption, ...] = ()
    return_id: str | None = None  # set once submitted
    totals: DraftTotals | None = None  # Loop's documented `draft_return.totals`
    # A partial failure: Loop answers 2xx with what it could do and `errors` for the rest.
    errors: tuple[Mapping[str, str | None], ...] = ()
    # The reasons a returning item may be given (`set_return_reason`'s ids).
    reasons: tuple[Reason, ...] = ()
    # The choices made after finalize (`refund`/`gift`; a `return_method_options` id).
    credit_type: str | None = None
    return_method_id: str | None = None
    # Loop's body as it was read (for the store, which parses it again); not part of
    # the value, so two reads of the same draft compare equal.
    body: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ReturnDetailsLineItem:
    id: str | None
    title: str | None
    sku: str | None
    quantity: int
    refund_amount: int
    condition: str | None
    disposition: str | None


@dataclass(frozen=True)
class ReturnDetails:
    """`/warehouse/return/details` as the peer reads it (amounts in minor units)."""

    id: str
    state: str | None
    order_name: str | None
    order_number: str | None
    customer_email: str | None
    currency: str | None
    return_total: int
    refund: int
    exchange: int
    gift_card: int
    handling_fee: int
    carrier: str | None
    label_status: str | None
    label_url: str | None
    tracking_number: str | None
    status_page_url: str | None
    type: str | None
    line_items: tuple[ReturnDetailsLineItem, ...]
