"""The body of every successful draft response: `draft_return`, `context`, `links`,
`return_method_options` and `errors`, as Loop's v1 Draft Returns API sends it.

Ids are JSON numbers (Loop's fixtures), money integer minor units. `reason_id` appears
on a returning item once set, `return_id` on the draft once submitted.
`context.order.line_items[].id` is the same id as `order_line_item_id` (the reference
treats the fixture's two values as independent; the sandbox keeps one id so clients
can show what an eligible item is).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loopdesk.sandbox.drafts import eligibility, exchanges, links, totals
from loopdesk.sandbox.drafts.model import Draft, DraftBook
from loopdesk.sandbox.world import World


@dataclass(frozen=True)
class View:
    """What a draft looks like now: computed once per request, used to check and render."""

    order: dict[str, Any]
    eligible: list[int]
    refused: list[tuple[int, str]]
    totals: totals.Totals
    links: list[links.Link]

    def line(self, line_item_id: int) -> dict[str, Any] | None:
        return next(
            (x for x in eligibility.line_items(self.order) if x["id"] == line_item_id), None
        )


def view(world: World, book: DraftBook, draft: Draft) -> View:
    order = world.find_order(draft.order_name) or {"name": draft.order_name, "line_items": []}
    eligible, refused = eligibility.split(world, order, book.now())
    added = {i.order_line_item_id for i in draft.returning_items}
    worth = totals.compute(world, draft)
    addable = [i for i in eligible if i not in added]
    return View(order, eligible, refused, worth, links.available(draft, addable, worth))


def body(world: World, draft: Draft, seen: View, base: str) -> dict[str, Any]:
    """`base` is the API prefix the request came through (`/api/v1`), for the hrefs."""
    return {
        "draft_return": draft_object(draft, seen),
        "context": context(world, draft, seen),
        "links": [link.render(f"{base}/draft-returns/{draft.id}") for link in seen.links],
        "return_method_options": [
            {"id": m["id"], "name": m["name"], "type": m["type"]} for m in world.return_methods
        ],
        "errors": [],
    }


def draft_object(draft: Draft, seen: View) -> dict[str, Any]:
    items = []
    for item in draft.returning_items:
        row: dict[str, Any] = {
            "id": item.id,
            "order_line_item_id": item.order_line_item_id,
            "return_type": item.return_type,
        }
        if item.reason_id is not None:
            row["reason_id"] = item.reason_id
        items.append(row)
    body: dict[str, Any] = {
        "id": draft.id,
        "state": draft.state,
        "order_name": draft.order_name,
        "currency": seen.totals.currency,
        "is_gift": draft.is_gift,
        "credit_type": draft.credit_type,
        "return_method_id": draft.return_method_id,
        "returning_items": items,
        "cart_items": [
            {
                "id": c.id,
                "variant_id": c.variant_id,
                "exchange_type": "exchange",
                "exchange_for_returning_item_id": c.returning_item_id,
                "variant_title": c.variant_title,
                "price": c.price,
            }
            for c in draft.cart_items
        ],
        "totals": totals.documented(seen.totals),
    }
    if draft.return_id is not None:
        body["return_id"] = int(draft.return_id)
    return body


def context(world: World, draft: Draft, seen: View) -> dict[str, Any]:
    order_id, _ = world.order_ids(draft.order_name)
    return {
        "items_eligible_to_return": [{"order_line_item_id": i} for i in seen.eligible],
        "items_not_eligible_to_return": [
            {"order_line_item_id": i, "ineligibility_code": code} for i, code in seen.refused
        ],
        "order": {
            "id": int(order_id),
            "name": draft.order_name,
            "currency": seen.totals.currency,
            "line_items": [
                _line(world, line, seen.totals.currency)
                for line in eligibility.line_items(seen.order)
            ],
        },
        "return_reasons": [{"id": r["id"], "name": r["name"]} for r in world.reasons],
        # Loop fills a returning item's catalog only once its type is exchange.
        "exchange_options": {
            str(item.id): exchanges.catalog(world, seen.line(item.order_line_item_id) or {})
            for item in draft.returning_items
            if item.return_type == "exchange"
        },
    }


def _line(world: World, line: dict[str, Any], currency: str) -> dict[str, Any]:
    product = world.find_product(line.get("product_id"))
    found = world.find_variant(line["variant_id"]) if line.get("variant_id") else None
    image = (found[1].get("image") if found else None) or (product or {}).get("image")
    return {
        "id": line["id"],
        "title": line["title"],
        "variant_title": line.get("variant_title"),
        "price": totals.line_price(line, currency),
        "image": image,
        "provider_product_id": line.get("product_id"),
        "provider_variant_id": line.get("variant_id"),
    }
