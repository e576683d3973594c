"""The views agents see, with the JSON field names of Gladly's GraphQL types.

`LoopReturn`, `Note`, `Order` and `Shipment` mirror the `loop_returns_return`,
`loop_returns_note` and `loop_order_tracking_order` data types of Gladly's Loop apps,
so a Gladly app, a Lookup Adaptor or any help desk reads them unchanged. Money is
the exact string Loop sent (a decimal with 2 places), never a float; timestamps are
ISO 8601 strings, kept as Loop wrote them when already ISO (see `timestamps`).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from loopdesk.domain.timestamps import parse_iso


def _is_decimal(value: str) -> str:
    Decimal(value)  # raises on anything that is not an exact decimal
    return value


Money = Annotated[str, AfterValidator(_is_decimal)]
"""A decimal amount as the exact string Loop sent, e.g. "-29.99"."""


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ItemCost(_View):
    price: Money
    discount: Money
    tax: Money
    total: Money


class ReturnItem(_View):
    id: str
    providerId: str
    productId: str
    variantId: str
    sku: str
    title: str | None
    returnReason: str | None
    parentReturnReason: str | None
    returnedAt: str | None
    outcome: str
    comment: str | None
    cost: ItemCost


class ReturnSide(_View):
    productTotal: Money
    discountTotal: Money
    taxTotal: Money
    total: Money
    items: list[ReturnItem]


class ExchangeItem(_View):
    id: str
    productId: str
    variantId: str
    orderName: str
    orderId: str
    sku: str
    title: str | None
    isOutOfStock: bool
    outOfStockResolution: str
    cost: ItemCost


class ExchangeSide(_View):
    productTotal: Money
    discountTotal: Money
    taxTotal: Money
    total: Money
    items: list[ExchangeItem]


class OrderRef(_View):
    loopId: str
    name: str
    providerId: str
    number: str


class CostBreakdown(_View):
    handlingFee: Money
    giftCardAmount: Money
    refund: Money
    upsell: Money


class Shipping(_View):
    carrier: str
    trackingNumber: str
    labelStatus: str
    labelUpdatedAt: str | None
    statusPageUrl: str
    returnMethod: str | None
    destinationId: str


class Note(_View):
    id: str
    returnId: str
    content: str
    createdAt: str | None


class LoopReturn(_View):
    id: str
    state: str
    updatedAt: str
    createdAt: str
    editedAt: str | None
    currency: str
    url: str
    outcome: str
    customerEmail: str
    order: OrderRef
    return_: ReturnSide = Field(alias="return")
    exchange: ExchangeSide
    costBreakdown: CostBreakdown
    shipping: Shipping
    notes: list[Note] = Field(default_factory=list)

    @property
    def updated(self) -> datetime:
        """`updatedAt` as an aware datetime, for ordering and freshness."""
        return parse_iso(self.updatedAt)

    def with_notes(self, notes: list[Note]) -> LoopReturn:
        return self.model_copy(update={"notes": notes})

    def to_json(self, *, include_notes: bool = True) -> dict[str, object]:
        return self.model_dump(
            mode="json", by_alias=True, exclude=None if include_notes else {"notes"}
        )


class Shipment(_View):
    carrierDisplayName: str
    status: str
    trackingCode: str


class Order(_View):
    id: str
    name: str
    shipments: list[Shipment]
    shipmentUrl: str | None

    def to_json(self) -> dict[str, object]:
        return self.model_dump(mode="json")
