"""The benchmark's customers: 3 addresses, 8 returns (each with notes), 2 orders; and a
large one, 5 addresses with 10 returns each (50, the lookup's bound), to show how the
cost grows.

Written as a contract sandbox data file with dates relative to now, so the lookup's
365-day window always holds every return.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

EMAILS = ["bench.primary@example.com", "bench.work@example.com", "bench.old@example.com"]
RETURNS = 8
ORDERS = 2
LARGE_EMAILS = [f"bench.large{n}@example.com" for n in range(5)]
LARGE_RETURNS = 50


def _return(index: int, email: str, now: datetime) -> dict[str, Any]:
    updated = now - timedelta(days=index % 300 + 1)
    return {
        "id": str(61000000 + index),
        "state": "open",
        "created_at": (updated - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "updated_at": updated.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "order_name": f"#{5000 + index % ORDERS}",
        "order_id": str(9000 + index),
        "outcome": "refund",
        "customer": email,
        "currency": "USD",
        "return_total": "40.00",
        "refund": "40.00",
        "line_items": [
            {
                "line_item_id": str(700 + index),
                "title": "Wool Sweater - M",
                "price": "-40.00",
                "refund": "40.00",
                "returned_at": updated.strftime("%Y-%m-%d %H:%M:%S"),
                "return_reason": "Too small",
                "outcome": "default",
            }
        ],
        "exchanges": [],
        "carrier": "USPS",
        "tracking_number": f"9400{index:018d}",
        "label_status": "in_transit",
        "label_updated_at": updated.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "status_page_url": f"https://company.loopreturns.com/#/return/{index}",
        "destination_id": 7295,
        "return_method": None,
    }


def write_world(path: Path) -> Path:
    now = datetime.now(UTC).replace(microsecond=0)
    returns = [_return(i, EMAILS[i % len(EMAILS)], now) for i in range(RETURNS)]
    returns += [
        _return(RETURNS + i, LARGE_EMAILS[i % len(LARGE_EMAILS)], now) for i in range(LARGE_RETURNS)
    ]
    notes = {
        r["id"]: [{"id": 100 + n, "content": f"note {n}", "created_at": "2026-01-01 10:00:00"}]
        for n, r in enumerate(returns)
    }
    owners = [EMAILS[0]] * ORDERS + [LARGE_EMAILS[0]] * ORDERS
    orders = [
        {
            "name": f"#{5000 + i}",
            "customer_email": owner,
            "zip": "10001",
            "created_at": (now - timedelta(days=20 + i)).isoformat(),
            "shipments": [
                {
                    "trackingCode": f"1Z{i:016d}",
                    "status": "DELIVERED",
                    "carrierDisplayName": "UPS",
                    "trackingUrl": None,
                    "eta": None,
                    "deliveredAt": None,
                }
            ],
        }
        for i, owner in enumerate(owners)
    ]
    data = {
        "shop": {"name": "Bench", "domain": "bench.loopreturns.com"},
        "returns": returns,
        "notes": notes,
        "orders": orders,
    }
    path.write_text(json.dumps(data))
    return path
