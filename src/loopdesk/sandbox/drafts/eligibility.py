"""Which of an order's line items Loop lets a customer return, and why not the others.

One code per ineligible item, the most specific first. `final-sale` is Loop's own
(fixture and eligibility guide); `already-returned` and `outside-return-window` are
inferred (kebab-case like Loop's draft codes; no source names them). The window counts
from the order's `created_at`, `return_window_days` of the shop long, on the draft
book's clock; items in a return that was not cancelled count as returned.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from loopdesk.sandbox.world import World, parse_ts

FINAL_SALE = "final-sale"
ALREADY_RETURNED = "already-returned"
OUTSIDE_WINDOW = "outside-return-window"
FINAL_SALE_TAG = "final-sale"


def line_items(order: dict[str, Any]) -> list[dict[str, Any]]:
    items = order.get("line_items")
    return list(items) if isinstance(items, list) else []


def returned_ids(world: World, order_name: str) -> set[int]:
    """Loop's line item ids already in a live (not cancelled) return of the order."""
    found: set[int] = set()
    for item in world.returns_for_order(order_name):
        if item.get("state") == "cancelled":
            continue
        for line in item.get("line_items") or []:
            raw = str(line.get("line_item_id", "")) if isinstance(line, dict) else ""
            if raw.isascii() and raw.isdigit():
                found.add(int(raw))
    return found


def outside_window(world: World, order: dict[str, Any], now: datetime) -> bool:
    days = int(world.shop.get("return_window_days", 30))
    return now - parse_ts(order["created_at"]) > timedelta(days=days)


def ineligibility(
    world: World, order: dict[str, Any], line: dict[str, Any], now: datetime
) -> str | None:
    if line["id"] in returned_ids(world, order["name"]):
        return ALREADY_RETURNED
    if any(str(tag).strip().casefold() == FINAL_SALE_TAG for tag in line.get("tags") or ()):
        return FINAL_SALE
    if outside_window(world, order, now):
        return OUTSIDE_WINDOW
    return None


def split(
    world: World, order: dict[str, Any], now: datetime
) -> tuple[list[int], list[tuple[int, str]]]:
    """(eligible line item ids, [(ineligible id, code)]), in the order's item order."""
    eligible: list[int] = []
    refused: list[tuple[int, str]] = []
    for line in line_items(order):
        code = ineligibility(world, order, line, now)
        if code is None:
            eligible.append(line["id"])
        else:
            refused.append((line["id"], code))
    return eligible, refused
