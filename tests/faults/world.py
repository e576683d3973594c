"""A sandbox data file for the fault matrix: many customers of three addresses each.

Every address has one return with one note and one order, so a fault targeted at one
address, one return's notes or the Order Tracking query shows exactly what it removes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

LETTERS = ("a", "b", "c")


@dataclass(frozen=True)
class Customer:
    index: int

    def email(self, letter: str) -> str:
        return f"c{self.index:03d}-{letter}@faults.example"

    @property
    def emails(self) -> list[str]:
        return [self.email(x) for x in LETTERS]

    def return_id(self, letter: str) -> str:
        return str(31_000_000 + self.index * 10 + LETTERS.index(letter))

    def order_name(self, letter: str) -> str:
        return f"#{50_000 + self.index * 10 + LETTERS.index(letter)}"

    def list_target(self, letter: str) -> str:
        """What a fault rule's `path_contains` needs to hit this address's returns list."""
        return f"customer_email={quote(self.email(letter), safe='')}"

    def notes_target(self, letter: str) -> str:
        return f"/return/{self.return_id(letter)}/notes"


def _return(customer: Customer, letter: str, updated: datetime) -> dict[str, Any]:
    rid = customer.return_id(letter)
    stamp = updated.isoformat()
    return {
        "id": rid,
        "state": "open",
        "created_at": (updated - timedelta(days=1)).isoformat(),
        "updated_at": stamp,
        "edited_at": None,
        "total": "20.00",
        "order_id": f"9{rid}",
        "order_name": customer.order_name(letter),
        "provider_order_id": f"8{rid}",
        "order_number": customer.order_name(letter).lstrip("#"),
        "outcome": "refund",
        "customer": customer.email(letter),
        "multi_currency": False,
        "currency": "USD",
        "return_product_total": "20.00",
        "return_discount_total": "0.00",
        "return_tax_total": "0.00",
        "return_total": "20.00",
        "return_credit_total": "0.00",
        "exchange_product_total": "0.00",
        "exchange_discount_total": "0.00",
        "exchange_tax_total": "0.00",
        "exchange_total": "0.00",
        "exchange_credit_total": "0.00",
        "gift_card": "0.00",
        "gift_card_order_name": None,
        "gift_card_order_id": None,
        "handling_fee": "0.00",
        "refund": "20.00",
        "upsell": "0.00",
        "line_items": [
            {
                "line_item_id": f"{rid}01",
                "provider_line_item_id": f"7{rid}",
                "product_id": f"6{rid}",
                "variant_id": f"5{rid}",
                "sku": f"SKU-{rid}",
                "title": "Canvas tote - Natural",
                "price": "-20.00",
                "discount": "0.00",
                "tax": "0.00",
                "refund": "20.00",
                "returned_at": updated.strftime("%Y-%m-%d %H:%M:%S"),
                "exchange_variant": "",
                "return_reason": "Changed my mind",
                "parent_return_reason": "Other",
                "return_comment": "",
                "barcode": "N/A",
                "outcome": "default",
            }
        ],
        "exchanges": [],
        "carrier": "UPS",
        "tracking_number": f"1Z{rid}",
        "label_status": "in_transit",
        "label_updated_at": stamp,
        "status_page_url": f"https://faults.loopreturns.com/#/return/{rid}",
        "destination_id": 7295,
        "return_method": None,
    }


def write_world(path: Path, customers: int) -> Path:
    now = datetime.now(UTC).replace(microsecond=0)
    returns, notes, orders = [], {}, []
    for index in range(customers):
        customer = Customer(index)
        for n, letter in enumerate(LETTERS):
            updated = now - timedelta(days=3 + n)  # a, b, c: newest first
            returns.append(_return(customer, letter, updated))
            notes[customer.return_id(letter)] = [
                {
                    "id": 4_000_000 + index * 10 + n,
                    "content": f"note on {customer.return_id(letter)}",
                    "created_at": updated.strftime("%Y-%m-%d %H:%M:%S"),
                }
            ]
            orders.append(
                {
                    "name": customer.order_name(letter),
                    "customer_email": customer.email(letter),
                    "zip": "43215",
                    "created_at": (now - timedelta(days=10 + n)).isoformat(),
                    "shipments": [
                        {
                            "trackingCode": f"1Z{customer.return_id(letter)}S",
                            "status": "DELIVERED",
                            "carrierDisplayName": "UPS",
                            "trackingUrl": None,
                            "eta": None,
                            "deliveredAt": (now - timedelta(days=8 + n)).isoformat(),
                        }
                    ],
                }
            )
    path.write_text(json.dumps({"returns": returns, "notes": notes, "orders": orders}))
    return path
