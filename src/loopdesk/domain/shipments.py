"""An order and its shipments as Order Tracking's REST search tells them (reference 8.2).

`tracked_order(body)` reads the body of `GET /2022-10/shipments/search/{term}` into
plain values: per shipment its status (normalised: upper case, `_` between words), the
carrier, the tracking code and page, the ETA, when it was delivered, the last scan and
the items in the parcel. The body is upstream data: a missing or odd field reads as
absent, and nothing in it makes this raise.

The ETA is a date (`"2026-04-24"`), null, or `"pending"` (the carrier has not said);
anything else reads as unknown. A shipment's delivery time is its `statusDetails.date`
while that status is `DELIVERED`, else the newest `DELIVERED` event's date.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from loopdesk.domain.timestamps import normalize_timestamp, parse_iso

DELIVERED = "DELIVERED"
# Never sent (USPS only): not part of what the customer is waiting for.
CANCELLED = "CANCELLED"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
MAX_TEXT = 2_000

Delivery = Literal["delivered", "undelivered", "unknown"]


@dataclass(frozen=True)
class TrackedItem:
    name: str
    variant: str
    sku: str
    quantity: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "variant": self.variant,
            "sku": self.sku,
            "quantity": self.quantity,
        }


@dataclass(frozen=True)
class TrackedShipment:
    tracking_code: str
    carrier: str
    status: str  # normalised: `SHIPMENT_STALLED`; "" when Order Tracking gave none
    tracking_url: str | None = None  # http(s) only
    eta: date | None = None
    eta_pending: bool = False  # Order Tracking says "pending": no ETA yet
    delivered_at: datetime | None = None
    last_event: str = ""
    last_event_at: datetime | None = None
    items: list[TrackedItem] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        return self.status == DELIVERED

    def to_json(self) -> dict[str, Any]:
        return {
            "trackingCode": self.tracking_code,
            "carrier": self.carrier,
            "status": self.status,
            "trackingUrl": self.tracking_url,
            "eta": self.eta.isoformat() if self.eta else None,
            "etaPending": self.eta_pending,
            "deliveredAt": self.delivered_at.isoformat() if self.delivered_at else None,
            "lastEvent": self.last_event,
            "lastEventAt": self.last_event_at.isoformat() if self.last_event_at else None,
            "items": [i.to_json() for i in self.items],
        }


@dataclass(frozen=True)
class TrackedOrder:
    name: str
    shipments: list[TrackedShipment] = field(default_factory=list)

    @property
    def items(self) -> list[TrackedItem]:
        return [item for s in self.shipments for item in s.items]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "shipments": [s.to_json() for s in self.shipments]}


def order_key(name: str) -> str:
    """An order name as compared and stored: trimmed, case-folded, without the leading
    `#` (`#1086`, ` 1086` and `#1086 ` are one order)."""
    return name.strip().casefold().lstrip("#").strip()


def shipment_status(value: Any) -> str:
    """`shipment_stalled`, `Shipment Stalled` and `SHIPMENT-STALLED` read alike."""
    if not isinstance(value, str):
        return ""
    return "_".join(value.strip().upper().replace("-", " ").split())[:64]


def tracked_order(body: Any) -> TrackedOrder | None:
    """The order in a search body; None for `null` (no such order) or a body that is
    not an object."""
    if not isinstance(body, dict):
        return None
    shipments = body.get("shipments")
    return TrackedOrder(
        name=_text(body.get("name")),
        shipments=[
            _shipment(s)
            for s in (shipments if isinstance(shipments, list) else [])
            if isinstance(s, dict)
        ],
    )


def delivered_at(order: TrackedOrder | None) -> datetime | None:
    """When the return window starts: the last shipment's delivery. None when a
    shipment (cancelled ones aside) is not delivered or its time is unknown."""
    if order is None:
        return None
    sent = [s for s in order.shipments if s.status != CANCELLED]
    if not sent or any(not s.delivered or s.delivered_at is None for s in sent):
        return None
    return max(s.delivered_at for s in sent if s.delivered_at is not None)


def delivery(order: TrackedOrder | None) -> Delivery:
    """`delivered` (every parcel, with its time), `undelivered` (a parcel with a known
    status other than delivered) or `unknown` (no order, no parcels, no status, or
    delivered without a time)."""
    if delivered_at(order) is not None:
        return "delivered"
    if order is None:
        return "unknown"
    sent = [s for s in order.shipments if s.status != CANCELLED]
    if any(s.status and not s.delivered for s in sent):
        return "undelivered"
    return "unknown"


# --- readers ------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    return str(value).strip()[:MAX_TEXT]


def _moment(value: Any) -> datetime | None:
    written = normalize_timestamp(value)
    if written is None:
        return None
    try:
        return parse_iso(written)
    except ValueError:
        return None


def _eta(value: Any) -> tuple[date | None, bool]:
    if not isinstance(value, str):
        return None, False
    text = value.strip()
    if text.casefold() == "pending":
        return None, True
    if _DATE.match(text):
        try:
            return date.fromisoformat(text[:10]), False
        except ValueError:
            return None, False
    return None, False


def _url(value: Any) -> str | None:
    """Only a whole http(s) address is a link a reply may carry."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or len(text) > MAX_TEXT:
        return None
    if any(c.isspace() or ord(c) < 32 for c in text):
        return None
    return text


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _events(value: Any) -> list[dict[str, Any]]:
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def _quantity(value: Any) -> int:
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return max(0, min(value, 10_000))
    if isinstance(value, str) and value.strip().isdigit():
        return min(int(value.strip()[:6]), 10_000)
    return 1


def _items(value: Any) -> list[TrackedItem]:
    if not isinstance(value, list):
        return []
    return [
        TrackedItem(
            name=_text(item.get("productName")),
            variant=_text(item.get("variantName")),
            sku=_text(item.get("sku")),
            quantity=_quantity(item.get("quantity", 1)),
        )
        for item in value
        if isinstance(item, dict)
    ]


def _newest(events: Sequence[dict[str, Any]], status: str | None = None) -> dict[str, Any] | None:
    dated = [
        (moment, e)
        for e in events
        if status is None or shipment_status(e.get("status")) == status
        if (moment := _moment(e.get("date"))) is not None
    ]
    return max(dated, key=lambda pair: pair[0])[1] if dated else None


def _shipment(raw: dict[str, Any]) -> TrackedShipment:
    details = _dict(raw.get("statusDetails"))
    events = _events(raw.get("events"))
    latest = details or _newest(events) or {}
    status = shipment_status(latest.get("status")) or shipment_status(raw.get("status"))
    eta, pending = _eta(raw.get("eta") if "eta" in raw else details.get("eta"))
    if status == DELIVERED and _moment(details.get("date")) is not None:
        delivered = _moment(details.get("date"))
    else:
        found = _newest(events, DELIVERED)
        delivered = _moment(found.get("date")) if found else None
    return TrackedShipment(
        tracking_code=_text(raw.get("trackingCode")) or _text(details.get("trackingCode")),
        carrier=_text(raw.get("carrierName")) or _text(raw.get("carrierDisplayName")),
        status=status,
        tracking_url=_url(raw.get("trackingUrl")) or _url(details.get("trackingUrl")),
        eta=eta,
        eta_pending=pending,
        delivered_at=delivered,
        last_event=_text(latest.get("details")) or _text(latest.get("substatus")),
        last_event_at=_moment(latest.get("date")),
        items=_items(raw.get("lineItems")),
    )
