"""Hand-made Loop records for the routing tests: raw returns and orders, dates relative
to a given moment, any field removable (`drop`) to test what a missing field does."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from loopdesk.domain.models import LoopReturn, Order
from loopdesk.domain.normalize import normalize_order, normalize_return


def stamp(moment: datetime) -> str:
    return moment.isoformat()


def raw_return(
    return_id: str,
    now: datetime,
    *,
    state: str = "open",
    label_status: str = "delivered",
    label_days_ago: float | None = 3,
    created_days_ago: float = 20,
    updated_days_ago: float = 1,
    customer: str = "jane@example.com",
    out_of_stock: bool | None = None,
    drop: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A return as Loop's list puts it; `out_of_stock` None means no exchange."""
    body: dict[str, Any] = {
        "id": return_id,
        "state": state,
        "created_at": stamp(now - timedelta(days=created_days_ago)),
        "updated_at": stamp(now - timedelta(days=updated_days_ago)),
        "edited_at": None,
        "outcome": "refund" if out_of_stock is None else "exchange",
        "order_id": f"9{return_id}",
        "order_name": f"#{return_id}",
        "order_number": return_id,
        "customer": customer,
        "currency": "USD",
        "return_total": "29.99",
        "refund": "29.99",
        "line_items": [
            {
                "line_item_id": f"{return_id}1",
                "title": "t-shirt",
                "price": "-29.99",
                "refund": "29.99",
                "returned_at": "2026-11-02 04:51:33",
                "outcome": "default",
            }
        ],
        "exchanges": []
        if out_of_stock is None
        else [
            {
                "exchange_id": f"{return_id}7",
                "exchange_order_id": 481,
                "exchange_order_name": f"EXC-{return_id}-1",
                "title": "t-shirt - Medium",
                "price": "29.99",
                "total": "29.99",
                "out_of_stock": out_of_stock,
                "out_of_stock_resolution": "refund" if out_of_stock else None,
            }
        ],
        "carrier": "N/A" if label_status == "N/A" else "USPS",
        "tracking_number": "N/A" if label_status == "N/A" else f"94{return_id}",
        "label_status": label_status,
        "label_updated_at": "N/A"
        if label_status == "N/A" or label_days_ago is None
        else stamp(now - timedelta(days=label_days_ago)),
        "status_page_url": f"https://shop.loopreturns.com/#/return/{return_id}",
        "destination_id": 7295,
        "return_method": None,
    }
    for key in drop:
        body.pop(key, None)
    return body


def loop_return(return_id: str, now: datetime, **kwargs: Any) -> LoopReturn:
    return normalize_return(raw_return(return_id, now, **kwargs))


def raw_order(
    name: str, statuses: list[str], *, customer: str = "jane@example.com", now: datetime
) -> dict[str, Any]:
    return {
        "name": name,
        "customer_email": customer,
        "zip": "10001",
        "created_at": stamp(now - timedelta(days=5)),
        "shipments": [
            {
                "trackingCode": f"1Z{name.strip('#')}{i}",
                "status": status,
                "carrierDisplayName": "UPS",
                "trackingUrl": None,
                "eta": None,
                "deliveredAt": stamp(now - timedelta(days=1)) if status == "DELIVERED" else None,
            }
            for i, status in enumerate(statuses)
        ],
    }


def order(name: str, statuses: list[str], now: datetime) -> Order:
    raw = raw_order(name, statuses, now=now)
    return normalize_order({"name": raw["name"], "shipments": raw["shipments"]})


def write_world(path: Path, returns: list[dict[str, Any]], orders: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"returns": returns, "orders": orders}))
    return path
