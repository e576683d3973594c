"""Raw Loop bodies to the sidebar views, as Gladly's `response_transformation` does.

Every function here is pure and total: whatever JSON an API sends, the result is a
model or one `InvalidUpstreamData` naming what was wrong. A list with one bad return
keeps the good ones and reports the bad one in `problems`, so one odd record never
hides a customer's other returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from pydantic import ValidationError

from loopdesk.domain.models import (
    CostBreakdown,
    ExchangeItem,
    ExchangeSide,
    ItemCost,
    LoopReturn,
    Note,
    Order,
    OrderRef,
    ReturnItem,
    ReturnSide,
    Shipment,
    Shipping,
)
from loopdesk.domain.timestamps import normalize_timestamp
from loopdesk.errors import InvalidUpstreamData

T = TypeVar("T")

ADMIN_RETURN_URL = "https://admin.loopreturns.com/returns/{}"
# The peer's fixture writes `?query=`; its current template writes `?order_name=`.
# Both open the same tracking page; we follow the current template.
SHIPMENT_URL = "https://app.wonderment.com/shipments?order_name={}"
NO_LABEL = "N/A"


@dataclass(frozen=True)
class Normalized(Generic[T]):
    """The records that normalized, and one error per record that did not."""

    items: list[T]
    problems: list[InvalidUpstreamData] = field(default_factory=list)
    # The raw upstream record of each item, in the same order (kept for the store).
    sources: list[Any] = field(default_factory=list)


# --- returns -------------------------------------------------------------------------


def return_objects(body: Any) -> list[Any]:
    """The return objects in any of Loop's list bodies.

    `/api/v2/returns` wraps them in `{"data": [...]}`, the paginated v1 list in
    `{"returns": [...]}`, the plain v1 list is a bare array.
    """
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in ("data", "returns"):
            if key in body:
                inner = body[key]
                if inner is None:
                    return []
                if isinstance(inner, list):
                    return inner
                raise InvalidUpstreamData(f"returns body: `{key}` is not a list")
    raise InvalidUpstreamData("returns body: expected a list or an object with `data`")


def normalize_returns(body: Any, emails: Iterable[str] | None = None) -> Normalized[LoopReturn]:
    """Normalize a returns list, keeping only returns of the profile's addresses.

    `emails` None keeps every return; otherwise a return is kept when its `customer`
    equals one of the addresses, ignoring case (the peer's rule).
    """
    wanted = None if emails is None else {e.strip().lower() for e in emails}
    items: list[LoopReturn] = []
    problems: list[InvalidUpstreamData] = []
    sources: list[Any] = []
    for index, raw in enumerate(return_objects(body)):
        if wanted is not None and not _customer_matches(raw, wanted):
            continue
        try:
            items.append(normalize_return(raw))
            sources.append(raw)
        except InvalidUpstreamData as exc:
            exc.details.setdefault("index", index)
            problems.append(exc)
    return Normalized(items, problems, sources)


def _customer_matches(raw: Any, wanted: set[str]) -> bool:
    customer = raw.get("customer") if isinstance(raw, dict) else None
    return isinstance(customer, str) and customer.strip().lower() in wanted


def normalize_return(raw: Any) -> LoopReturn:
    """One Loop return object (list, details or webhook shape) as a `LoopReturn`."""
    if not isinstance(raw, dict):
        raise InvalidUpstreamData("return: expected an object")
    return_id = _required_id(raw, "id", "return")
    context = f"return {return_id}"
    try:
        created = normalize_timestamp(raw.get("created_at"))
        updated = normalize_timestamp(raw.get("updated_at")) or created
        if updated is None:
            raise InvalidUpstreamData(f"{context}: no valid `updated_at` or `created_at`")
        return LoopReturn.model_validate(
            {
                "id": return_id,
                "state": _text(raw.get("state")),
                "updatedAt": updated,
                "createdAt": created or updated,
                "editedAt": normalize_timestamp(raw.get("edited_at")),
                "currency": _text(raw.get("currency")) or "USD",
                "url": ADMIN_RETURN_URL.format(return_id),
                "outcome": display_outcome(raw.get("outcome")),
                "customerEmail": _text(raw.get("customer")),
                "order": OrderRef(
                    loopId=_text(raw.get("order_id")),
                    name=_text(raw.get("order_name")),
                    providerId=_text(raw.get("provider_order_id")),
                    number=_text(raw.get("order_number")),
                ),
                "return": ReturnSide.model_validate(
                    {
                        **_totals(raw, "return"),
                        "items": [
                            _return_item(i) for i in _list(raw.get("line_items"), "line_items")
                        ],
                    }
                ),
                "exchange": ExchangeSide.model_validate(
                    {
                        **_totals(raw, "exchange"),
                        "items": [
                            _exchange_item(i) for i in _list(raw.get("exchanges"), "exchanges")
                        ],
                    }
                ),
                "costBreakdown": CostBreakdown(
                    handlingFee=_money(raw.get("handling_fee")),
                    giftCardAmount=_money(raw.get("gift_card")),
                    refund=_money(raw.get("refund")),
                    upsell=_money(raw.get("upsell")),
                ),
                "shipping": Shipping(
                    carrier=_text(raw.get("carrier")) or NO_LABEL,
                    trackingNumber=_text(raw.get("tracking_number")) or NO_LABEL,
                    labelStatus=_text(raw.get("label_status")) or NO_LABEL,
                    labelUpdatedAt=normalize_timestamp(raw.get("label_updated_at")),
                    statusPageUrl=_text(raw.get("status_page_url")),
                    returnMethod=_text(raw.get("return_method")),
                    destinationId=_text(raw.get("destination_id")),
                ),
            }
        )
    except InvalidUpstreamData as exc:
        if not exc.message.startswith(context):
            exc.message = f"{context}: {exc.message}"
            exc.args = (exc.message,)
        exc.details.setdefault("returnId", return_id)
        raise
    except ValidationError as exc:
        raise InvalidUpstreamData(
            f"{context}: {_first_error(exc)}", details={"returnId": return_id}
        ) from None


def _totals(raw: dict[str, Any], side: str) -> dict[str, str]:
    """A side's totals: Loop names them `<side>_product_total`, ... `<side>_total`."""
    return {
        "productTotal": _money(raw.get(f"{side}_product_total")),
        "discountTotal": _money(raw.get(f"{side}_discount_total")),
        "taxTotal": _money(raw.get(f"{side}_tax_total")),
        "total": _money(raw.get(f"{side}_total")),
    }


def display_outcome(value: Any) -> str:
    """`exchange+refund` reads `Exchange, Refund`; `store_credit` reads `Store Credit`."""
    text = _text(value)
    parts = (part.replace("_", " ").strip() for part in text.split("+"))
    return ", ".join(
        " ".join(w[:1].upper() + w[1:] for w in part.split()) for part in parts if part
    )


def _return_item(raw: Any) -> ReturnItem:
    if not isinstance(raw, dict):
        raise InvalidUpstreamData("line_items: expected objects")
    return ReturnItem(
        id=_text(raw.get("line_item_id")),
        providerId=_text(raw.get("provider_line_item_id")),
        productId=_text(raw.get("product_id")),
        variantId=_text(raw.get("variant_id")),
        sku=_text(raw.get("sku")),
        title=_optional_text(raw.get("title")),
        returnReason=_optional_text(raw.get("return_reason")),
        parentReturnReason=_optional_text(raw.get("parent_return_reason")),
        returnedAt=normalize_timestamp(raw.get("returned_at")),
        outcome=_text(raw.get("outcome")),
        comment=_optional_text(raw.get("return_comment")),
        cost=_cost(raw, total_key="refund"),  # a returned item's total is its refund
    )


def _exchange_item(raw: Any) -> ExchangeItem:
    if not isinstance(raw, dict):
        raise InvalidUpstreamData("exchanges: expected objects")
    return ExchangeItem(
        id=_text(raw.get("exchange_id")),
        productId=_text(raw.get("product_id")),
        variantId=_text(raw.get("variant_id")),
        orderName=_text(raw.get("exchange_order_name")),
        orderId=_integer_text(raw.get("exchange_order_id")),
        sku=_text(raw.get("sku")),
        title=_optional_text(raw.get("title")),
        isOutOfStock=_flag(raw.get("out_of_stock")),
        outOfStockResolution=_text(raw.get("out_of_stock_resolution")),
        cost=_cost(raw, total_key="total"),
    )


def _cost(raw: dict[str, Any], *, total_key: str) -> ItemCost:
    return ItemCost(
        price=_money(raw.get("price")),
        discount=_money(raw.get("discount")),
        tax=_money(raw.get("tax")),
        total=_money(raw.get(total_key)),
    )


# --- notes ---------------------------------------------------------------------------


def note_objects(body: Any) -> list[Any]:
    """Notes as a bare array (Gladly's fixture) or `{"notes": [...]}` (Loop's docs).

    Loop answers a return without notes with 422 and the body `false`; read as none.
    """
    if body is None or body is False or body == "false":
        return []
    if isinstance(body, dict) and "notes" in body:
        body = body["notes"] if body["notes"] is not None else []
    if isinstance(body, list):
        return body
    raise InvalidUpstreamData("notes body: expected a list or an object with `notes`")


def normalize_notes(body: Any, return_id: str) -> Normalized[Note]:
    items: list[Note] = []
    problems: list[InvalidUpstreamData] = []
    for raw in note_objects(body):
        try:
            items.append(normalize_note(raw, return_id))
        except InvalidUpstreamData as exc:
            exc.details.setdefault("returnId", return_id)
            problems.append(exc)
    return Normalized(items, problems)


def normalize_note(raw: Any, return_id: str) -> Note:
    if not isinstance(raw, dict):
        raise InvalidUpstreamData(f"note of return {return_id}: expected an object")
    content = raw.get("content")
    if content is not None and not isinstance(content, str):
        raise InvalidUpstreamData(f"note of return {return_id}: `content` is not text")
    return Note(
        id=_required_id(raw, "id", f"note of return {return_id}", integer=True),
        returnId=return_id,
        content=content or "",
        createdAt=normalize_timestamp(raw.get("created_at")),
    )


# --- orders (Loop Order Tracking) ----------------------------------------------------


def order_objects(body: Any) -> list[Any]:
    """The orders of the GraphQL answer `{"data": {"orders": [...]}}`."""
    if not isinstance(body, dict):
        raise InvalidUpstreamData("orders body: expected a GraphQL response object")
    data = body.get("data")
    errors = body.get("errors")
    if data is None:
        if isinstance(errors, list) and errors:
            first = errors[0]
            message = first.get("message") if isinstance(first, dict) else first
            raise InvalidUpstreamData(f"orders: {message}")
        raise InvalidUpstreamData("orders body: no `data`")
    if not isinstance(data, dict):
        raise InvalidUpstreamData("orders body: `data` is not an object")
    orders = data.get("orders")
    if orders is None:
        return []
    if not isinstance(orders, list):
        raise InvalidUpstreamData("orders body: `orders` is not a list")
    return orders


def normalize_orders(body: Any, *, limit: int | None = 10) -> Normalized[Order]:
    items: list[Order] = []
    problems: list[InvalidUpstreamData] = []
    for raw in order_objects(body):
        if limit is not None and len(items) >= limit:
            break
        try:
            items.append(normalize_order(raw))
        except InvalidUpstreamData as exc:
            problems.append(exc)
    return Normalized(items, problems)


def normalize_order(raw: Any) -> Order:
    if not isinstance(raw, dict):
        raise InvalidUpstreamData("order: expected an object")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidUpstreamData("order: `name` is missing")
    shipments = []
    for item in _list(raw.get("shipments"), f"order {name}: shipments"):
        if not isinstance(item, dict):
            raise InvalidUpstreamData(f"order {name}: shipments: expected objects")
        shipments.append(
            Shipment(
                carrierDisplayName=_text(item.get("carrierDisplayName")),
                status=_text(item.get("status")),
                trackingCode=_text(item.get("trackingCode")),
            )
        )
    return Order(id=name, name=name, shipments=shipments, shipmentUrl=shipment_url(name))


def shipment_url(order_name: str) -> str:
    return SHIPMENT_URL.format(quote(order_name, safe=""))


# --- scalar readers ------------------------------------------------------------------


def _text(value: Any) -> str:
    """A scalar as text; absent reads as empty (the peer's `default ""`)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    raise InvalidUpstreamData(f"expected a scalar, got {type(value).__name__}")


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _integer_text(value: Any) -> str:
    """Exchange order ids arrive as JSON numbers; absent or 0 reads as empty."""
    text = _text(value)
    if not text:
        return ""
    try:
        number = int(Decimal(text))
    except (InvalidOperation, ValueError, OverflowError):
        raise InvalidUpstreamData(f"expected an integer id, got {text!r}") from None
    return str(number) if number else ""


def _money(value: Any) -> str:
    """Loop's 2-dp money strings kept exact; numbers become 2-dp strings; absent is 0."""
    if value is None or value == "":
        return "0.00"
    if isinstance(value, bool):
        raise InvalidUpstreamData("expected an amount, got a boolean")
    if isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise InvalidUpstreamData(f"expected an amount, got {value!r}") from None
        if not amount.is_finite():
            raise InvalidUpstreamData(f"expected an amount, got {value!r}")
        return value.strip()
    if isinstance(value, int | float):
        amount = Decimal(str(value))
        if not amount.is_finite():
            raise InvalidUpstreamData(f"expected an amount, got {value!r}")
        return f"{amount:.2f}"
    raise InvalidUpstreamData(f"expected an amount, got {type(value).__name__}")


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, int | float):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "0", "no", ""}:
        return False
    raise InvalidUpstreamData(f"expected a boolean, got {value!r}")


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidUpstreamData(f"{what}: expected a list")
    return value


def _required_id(raw: dict[str, Any], key: str, what: str, *, integer: bool = False) -> str:
    value = raw.get(key)
    if isinstance(value, bool) or value is None or value == "":
        raise InvalidUpstreamData(f"{what}: `{key}` is missing")
    if integer:
        text = _integer_text(value)
        if not text and value not in (0, "0"):
            raise InvalidUpstreamData(f"{what}: `{key}` is missing")
        return text or "0"
    if isinstance(value, float) and not value.is_integer():
        raise InvalidUpstreamData(f"{what}: `{key}` is not an id")
    return _text(value)


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg"))
