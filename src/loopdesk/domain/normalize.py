"""Raw Loop bodies to the sidebar views, as Gladly's `response_transformation` does.

Every function here is pure and total: whatever JSON an API sends, the result is a
model or one `InvalidUpstreamData` naming what was wrong. One unusable field (a `null`
among the line items, a money string like `"N/A"`, an impossible timestamp) never hides
the return: the field reads blank and a problem names it, which a lookup reports in
`meta.errors`. A list keeps every record it can show and reports the rest in `problems`.

Text never carries NUL characters (no store or help desk keeps them); amounts read
with at least two decimals (`"29.9"` reads `"29.90"`) and are otherwise exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
from loopdesk.domain.timestamps import checked_timestamp, normalize_timestamp
from loopdesk.errors import InvalidUpstreamData

T = TypeVar("T")

ADMIN_RETURN_URL = "https://admin.loopreturns.com/returns/{}"
# The peer's fixture writes `?query=`; its current template writes `?order_name=`.
# Both open the same tracking page; we follow the current template.
SHIPMENT_URL = "https://app.wonderment.com/shipments?order_name={}"
NO_LABEL = "N/A"
ZERO_MONEY = "0.00"
CENT = Decimal("0.01")
# Beyond these an "amount" or "id" is not Loop's (and converting it could take forever).
MAX_AMOUNT_DIGITS = 18
MAX_ID_DIGITS = 40


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
    equals one of the addresses, ignoring case (the peer's rule). A return with an
    unusable field is kept with that field blank; `problems` says which field (its
    `details` carry `returnId` and `field`). Only a record with no id or no usable
    timestamp at all is left out (reported with its `index`).
    """
    wanted = None if emails is None else {e.strip().lower() for e in emails}
    items: list[LoopReturn] = []
    problems: list[InvalidUpstreamData] = []
    sources: list[Any] = []
    for index, raw in enumerate(return_objects(body)):
        if wanted is not None and not _customer_matches(raw, wanted):
            continue
        try:
            item, blanked = read_return(raw)
        except InvalidUpstreamData as exc:
            exc.details.setdefault("index", index)
            problems.append(exc)
            continue
        items.append(item)
        sources.append(raw)
        problems.extend(blanked)
    return Normalized(items, problems, sources)


def _customer_matches(raw: Any, wanted: set[str]) -> bool:
    customer = raw.get("customer") if isinstance(raw, dict) else None
    return isinstance(customer, str) and _clean(customer).strip().lower() in wanted


def normalize_return(raw: Any) -> LoopReturn:
    """One Loop return object (list, details or webhook shape) as a `LoopReturn`;
    unusable fields read blank (see `read_return` for what was blanked)."""
    return read_return(raw)[0]


def read_return(raw: Any) -> tuple[LoopReturn, list[InvalidUpstreamData]]:
    """A return and one problem per field that could not be read and reads blank.

    Raises `InvalidUpstreamData` only when nothing sensible can be shown: not an
    object, no id, or neither `updated_at` nor `created_at` usable.
    """
    if not isinstance(raw, dict):
        raise InvalidUpstreamData("return: expected an object")
    return_id = _required_id(raw, "id", "return")
    fields = _Fields(return_id)
    created = fields.timestamp(raw, "created_at")
    updated = fields.timestamp(raw, "updated_at") or created
    if updated is None:
        raise InvalidUpstreamData(
            f"return {return_id}: no valid `updated_at` or `created_at`",
            details={"returnId": return_id},
        )
    try:
        view = LoopReturn.model_validate(
            {
                "id": return_id,
                "state": fields.text(raw, "state"),
                "updatedAt": updated,
                "createdAt": created or updated,
                "editedAt": fields.timestamp(raw, "edited_at"),
                "currency": fields.text(raw, "currency") or "USD",
                "url": ADMIN_RETURN_URL.format(return_id),
                "outcome": fields.read("outcome", lambda: display_outcome(raw.get("outcome")), ""),
                "customerEmail": fields.text(raw, "customer"),
                "order": OrderRef(
                    loopId=fields.text(raw, "order_id"),
                    name=fields.text(raw, "order_name"),
                    providerId=fields.text(raw, "provider_order_id"),
                    number=fields.text(raw, "order_number"),
                ),
                "return": ReturnSide(
                    **_totals(fields, raw, "return"),
                    items=[
                        _return_item(fields, where, item)
                        for where, item in fields.objects(raw, "line_items")
                    ],
                ),
                "exchange": ExchangeSide(
                    **_totals(fields, raw, "exchange"),
                    items=[
                        _exchange_item(fields, where, item)
                        for where, item in fields.objects(raw, "exchanges")
                    ],
                ),
                "costBreakdown": CostBreakdown(
                    handlingFee=fields.money(raw, "handling_fee"),
                    giftCardAmount=fields.money(raw, "gift_card"),
                    refund=fields.money(raw, "refund"),
                    upsell=fields.money(raw, "upsell"),
                ),
                "shipping": Shipping(
                    carrier=fields.text(raw, "carrier") or NO_LABEL,
                    trackingNumber=fields.text(raw, "tracking_number") or NO_LABEL,
                    labelStatus=fields.text(raw, "label_status") or NO_LABEL,
                    labelUpdatedAt=fields.timestamp(raw, "label_updated_at"),
                    statusPageUrl=fields.text(raw, "status_page_url"),
                    returnMethod=fields.text(raw, "return_method"),
                    destinationId=fields.text(raw, "destination_id"),
                ),
            }
        )
    except ValidationError as exc:  # a defect in the readers above, never Loop's data
        raise InvalidUpstreamData(
            f"return {return_id}: {_first_error(exc)}", details={"returnId": return_id}
        ) from None
    return view, fields.problems


class _Fields:
    """Reads one return's fields: a field that cannot be read reads as absent (blank,
    or "0.00" for money, as Loop's own absent amounts read) and is noted."""

    def __init__(self, return_id: str) -> None:
        self.return_id = return_id
        self.problems: list[InvalidUpstreamData] = []

    def read(self, where: str, reader: Callable[[], T], blank: T) -> T:
        try:
            return reader()
        except InvalidUpstreamData as exc:
            self.note(where, exc.message)
            return blank

    def note(self, where: str, message: str) -> None:
        self.problems.append(
            InvalidUpstreamData(
                f"return {self.return_id}: `{where}`: {message}; shown blank",
                details={"returnId": self.return_id, "field": where},
            )
        )

    def text(self, raw: dict[str, Any], key: str, at: str = "") -> str:
        return self.read(at + key, lambda: _text(raw.get(key)), "")

    def optional_text(self, raw: dict[str, Any], key: str, at: str = "") -> str | None:
        return self.read(at + key, lambda: _optional_text(raw.get(key)), None)

    def money(self, raw: dict[str, Any], key: str, at: str = "") -> str:
        return self.read(at + key, lambda: _money(raw.get(key)), ZERO_MONEY)

    def timestamp(self, raw: dict[str, Any], key: str, at: str = "") -> str | None:
        return self.read(at + key, lambda: checked_timestamp(raw.get(key)), None)

    def flag(self, raw: dict[str, Any], key: str, at: str = "") -> bool:
        return self.read(at + key, lambda: _flag(raw.get(key)), False)

    def integer_text(self, raw: dict[str, Any], key: str, at: str = "") -> str:
        return self.read(at + key, lambda: _integer_text(raw.get(key)), "")

    def objects(self, raw: dict[str, Any], key: str) -> list[tuple[str, dict[str, Any]]]:
        """The objects of a list field with their paths; a `null` or odd entry is noted
        and left out, the others kept."""
        value = raw.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.note(key, "expected a list")
            return []
        found = []
        for index, entry in enumerate(value):
            if isinstance(entry, dict):
                found.append((f"{key}[{index}].", entry))
            else:
                self.note(f"{key}[{index}]", "expected an object, left out")
        return found


def _totals(fields: _Fields, raw: dict[str, Any], side: str) -> dict[str, str]:
    """A side's totals: Loop names them `<side>_product_total`, ... `<side>_total`."""
    return {
        "productTotal": fields.money(raw, f"{side}_product_total"),
        "discountTotal": fields.money(raw, f"{side}_discount_total"),
        "taxTotal": fields.money(raw, f"{side}_tax_total"),
        "total": fields.money(raw, f"{side}_total"),
    }


def display_outcome(value: Any) -> str:
    """`exchange+refund` reads `Exchange, Refund`; `store_credit` reads `Store Credit`."""
    text = _text(value)
    parts = (part.replace("_", " ").strip() for part in text.split("+"))
    return ", ".join(
        " ".join(w[:1].upper() + w[1:] for w in part.split()) for part in parts if part
    )


def _return_item(fields: _Fields, at: str, raw: dict[str, Any]) -> ReturnItem:
    return ReturnItem(
        id=fields.text(raw, "line_item_id", at),
        providerId=fields.text(raw, "provider_line_item_id", at),
        productId=fields.text(raw, "product_id", at),
        variantId=fields.text(raw, "variant_id", at),
        sku=fields.text(raw, "sku", at),
        title=fields.optional_text(raw, "title", at),
        returnReason=fields.optional_text(raw, "return_reason", at),
        parentReturnReason=fields.optional_text(raw, "parent_return_reason", at),
        returnedAt=fields.timestamp(raw, "returned_at", at),
        outcome=fields.text(raw, "outcome", at),
        comment=fields.optional_text(raw, "return_comment", at),
        cost=_cost(fields, at, raw, total_key="refund"),  # a returned item's total is its refund
    )


def _exchange_item(fields: _Fields, at: str, raw: dict[str, Any]) -> ExchangeItem:
    return ExchangeItem(
        id=fields.text(raw, "exchange_id", at),
        productId=fields.text(raw, "product_id", at),
        variantId=fields.text(raw, "variant_id", at),
        orderName=fields.text(raw, "exchange_order_name", at),
        orderId=fields.integer_text(raw, "exchange_order_id", at),
        sku=fields.text(raw, "sku", at),
        title=fields.optional_text(raw, "title", at),
        isOutOfStock=fields.flag(raw, "out_of_stock", at),
        outOfStockResolution=fields.text(raw, "out_of_stock_resolution", at),
        cost=_cost(fields, at, raw, total_key="total"),
    )


def _cost(fields: _Fields, at: str, raw: dict[str, Any], *, total_key: str) -> ItemCost:
    return ItemCost(
        price=fields.money(raw, "price", at),
        discount=fields.money(raw, "discount", at),
        tax=fields.money(raw, "tax", at),
        total=fields.money(raw, total_key, at),
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
        content=_clean(content or ""),
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
        return _clean(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if value.bit_length() > MAX_ID_DIGITS * 4:
            raise InvalidUpstreamData("expected a scalar, got a number too large to be Loop's")
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    raise InvalidUpstreamData(f"expected a scalar, got {type(value).__name__}")


def _clean(text: str) -> str:
    return text.replace("\x00", "") if "\x00" in text else text


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _integer_text(value: Any) -> str:
    """Exchange order ids arrive as JSON numbers; absent or 0 reads as empty."""
    text = _text(value)
    if not text:
        return ""
    try:
        amount = Decimal(text.strip())
        if not amount.is_finite() or amount.adjusted() > MAX_ID_DIGITS:
            raise ValueError(text)
        if amount != amount.to_integral_value():
            raise ValueError(text)
        number = int(amount)
    except (InvalidOperation, ValueError, OverflowError):
        raise InvalidUpstreamData(f"expected an integer id, got {text[:40]!r}") from None
    return str(number) if number else ""


def _money(value: Any) -> str:
    """An amount as a decimal string with at least 2 places; absent reads as 0.00.

    Strings keep every digit Loop sent (`"29.9"` reads `"29.90"`, `"0.125"` stays);
    JSON numbers are binary floats, so they are rounded to cents.
    """
    if value is None or value == "":
        return ZERO_MONEY
    if isinstance(value, bool):
        raise InvalidUpstreamData("expected an amount, got a boolean")
    if isinstance(value, str):
        text = value.strip()
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise InvalidUpstreamData(f"expected an amount, got {text[:40]!r}") from None
    elif isinstance(value, int | float):
        amount = Decimal(str(value))
    else:
        raise InvalidUpstreamData(f"expected an amount, got {type(value).__name__}")
    if not amount.is_finite() or amount.adjusted() >= MAX_AMOUNT_DIGITS:
        raise InvalidUpstreamData(f"expected an amount, got {str(value)[:40]!r}")
    if isinstance(value, float) or int(amount.as_tuple().exponent) >= -2:
        amount = amount.quantize(CENT)
    if amount.is_zero():
        amount = amount.copy_abs()  # "-0.00" is no amount owed either way
    return f"{amount:f}"


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
    try:
        text = _text(value).strip()
    except InvalidUpstreamData as exc:
        raise InvalidUpstreamData(f"{what}: `{key}`: {exc.message}") from None
    if not text:
        raise InvalidUpstreamData(f"{what}: `{key}` is missing")
    return text


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg"))
