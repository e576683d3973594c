"""The `links` of a draft: the actions legal in its current state, and nothing else.

This is the one place that decides what a draft allows: every route asks `allows`
before acting, so an action missing from `links` is refused (422
`action-validation-failed`) and a link is never offered that would be refused for the
draft's state. Rel names follow Loop's (fixtures: `set-return-reason`, `totals`,
`add-exchange-item`; docs: `add-returning-item`, `finalize-items`,
`submit-draft-return`); `is_required` is left out of `totals` and
`cancel-draft-return`, as Loop leaves it out of `totals`.

- `created`: add/remove returning items, a reason and a type per item, an exchange
  variant per exchange item, `finalize-items` once every item has its reason (and
  exchange variant), and cancel.
- `items-finalized`: totals, credit type, return method, cancel, and
  `submit-draft-return` only when the draft is ready: method chosen, credit type set
  when value goes back, the amount due covered. Its presence is the readiness signal.
- `submitted`, `cancelled`, `expired`: no links.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loopdesk.sandbox.drafts.model import CREATED, ITEMS_FINALIZED, Draft
from loopdesk.sandbox.drafts.totals import Totals

ADD_ITEM = "add-returning-item"
REMOVE_ITEM = "remove-returning-item"
SET_REASON = "set-return-reason"
SET_TYPE = "set-return-type"
ADD_EXCHANGE = "add-exchange-item"
FINALIZE = "finalize-items"
TOTALS = "totals"
SET_CREDIT_TYPE = "set-credit-type"
SELECT_METHOD = "select-return-method"
SUBMIT = "submit-draft-return"
CANCEL = "cancel-draft-return"


@dataclass(frozen=True)
class Link:
    rel: str
    method: str
    path: str  # below /draft-returns/{id}
    required: bool | None  # None: `is_required` left out
    description: str
    fields: tuple[tuple[str, str], ...] = ()  # (name, JSON type) of the body
    item_id: int | None = None

    def render(self, base: str) -> dict[str, Any]:
        body: dict[str, Any] = {"rel": self.rel, "href": base + self.path, "method": self.method}
        if self.required is not None:
            body["is_required"] = self.required
        body["description"] = self.description
        body["fields"] = [{"name": n, "type": t, "required": True} for n, t in self.fields]
        return body


def items_ready(draft: Draft) -> bool:
    """Every returning item has a reason, and every exchange its variant."""
    return bool(draft.returning_items) and all(
        item.reason_id is not None
        and (item.return_type != "exchange" or draft.cart_item_for(item.id) is not None)
        for item in draft.returning_items
    )


def steps_done(draft: Draft) -> bool:
    """The customer's choices after finalize are made (payment aside)."""
    credit_ok = draft.credit_type is not None or not draft.needs_credit_type
    return draft.return_method_id is not None and credit_ok


def available(draft: Draft, addable: list[int], totals: Totals) -> list[Link]:
    """The draft's links; `addable` are the eligible line items not yet in it."""
    if draft.state == CREATED:
        return _created(draft, addable)
    if draft.state == ITEMS_FINALIZED:
        return _finalized(draft, totals)
    return []


def _created(draft: Draft, addable: list[int]) -> list[Link]:
    links = []
    if addable:
        links.append(
            Link(
                ADD_ITEM,
                "POST",
                "/returning-items",
                not draft.returning_items,
                "Add an eligible order line item to the return",
                (("order_line_item_id", "integer"),),
            )
        )
    for item in draft.returning_items:
        base = f"/returning-items/{item.id}"
        links += [
            Link(
                REMOVE_ITEM,
                "DELETE",
                base,
                False,
                "Remove this item from the return",
                item_id=item.id,
            ),
            Link(
                SET_REASON,
                "POST",
                base + "/return-reason",
                item.reason_id is None,
                "Set why this item is returned (a reason from context.return_reasons)",
                (("reason_id", "integer"),),
                item.id,
            ),
            Link(
                SET_TYPE,
                "POST",
                base + "/return-type",
                False,
                "Choose credit (refund or store credit) or exchange for this item",
                (("return_type", "string"),),
                item.id,
            ),
        ]
        if item.return_type == "exchange":
            links.append(
                Link(
                    ADD_EXCHANGE,
                    "POST",
                    base + "/exchange-item",
                    draft.cart_item_for(item.id) is None,
                    "Choose the variant to exchange for (context.exchange_options)",
                    (("variant_id", "integer"),),
                    item.id,
                )
            )
    if items_ready(draft):
        links.append(
            Link(FINALIZE, "POST", "/finalize-items", True, "Confirm the items of the return")
        )
    links.append(_cancel())
    return links


def _finalized(draft: Draft, totals: Totals) -> list[Link]:
    links = [
        Link(TOTALS, "GET", "/totals", None, "What the return is worth and what is due"),
        Link(
            SET_CREDIT_TYPE,
            "POST",
            "/credit-type",
            draft.needs_credit_type and draft.credit_type is None,
            "Refund to the original payment, or store credit (gift)",
            (("credit_type", "string"),),
        ),
        Link(
            SELECT_METHOD,
            "POST",
            "/select-return-method",
            draft.return_method_id is None,
            "Choose how the items travel back (return_method_options)",
            (("return_method_id", "integer"),),
        ),
    ]
    if steps_done(draft) and totals.is_difference_covered:
        links.append(Link(SUBMIT, "POST", "/submit", True, "Create the return"))
    links.append(_cancel())
    return links


def _cancel() -> Link:
    return Link(CANCEL, "POST", "/cancel", None, "Abandon the draft return")


def allows(links: list[Link], rel: str, item_id: int | None = None) -> bool:
    return any(link.rel == rel and link.item_id == item_id for link in links)
