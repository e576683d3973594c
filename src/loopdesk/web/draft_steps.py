"""The steps of a draft return the console's forms can take, one definition each: the
link rel that makes it legal (Loop's, from `domain.drafts.CALL_RELS`), the API route
that takes it, the form field it sends, and its words.

A page offers a step only when the draft's `links` hold its rel (for a returning item:
a link on that item); the API checks again and answers 409 `draft_step_not_allowed`
when the page was out of date.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from loopdesk.domain.drafts import CALL_RELS


@dataclass(frozen=True)
class Step:
    name: str  # the console's name, in `/drafts/{id}/steps/{name}`
    call: str  # the client call (`CALL_RELS` key)
    method: str
    path: str  # below /v1/drafts/{id}; `{item}` is the returning item's id
    field: str | None = None  # the form field carrying the one value...
    key: str | None = None  # ...sent as this body key
    per_item: bool = False
    confirm: bool = False  # asked "Yes, ...?" first, like the console's actions
    done: str = ""  # what happened, for the result line

    @property
    def rel(self) -> str:
        return CALL_RELS[self.call]


_ALL = (
    Step(
        "add-item",
        "add_returning_item",
        "POST",
        "/items",
        "line_item",
        "orderLineItemId",
        done="Item added to the return",
    ),
    Step(
        "remove-item",
        "remove_returning_item",
        "DELETE",
        "/items/{item}",
        per_item=True,
        done="Item removed from the return",
    ),
    Step(
        "reason",
        "set_return_reason",
        "POST",
        "/items/{item}/reason",
        "reason_id",
        "reasonId",
        per_item=True,
        done="Reason set",
    ),
    Step(
        "type",
        "set_return_type",
        "POST",
        "/items/{item}/type",
        "return_type",
        "returnType",
        per_item=True,
        done="Return type set",
    ),
    Step(
        "exchange",
        "add_exchange_item",
        "POST",
        "/items/{item}/exchange",
        "variant_id",
        "variantId",
        per_item=True,
        done="Exchange chosen",
    ),
    Step("finalize", "finalize_items", "POST", "/finalize", done="Items confirmed"),
    Step(
        "credit-type",
        "set_credit_type",
        "POST",
        "/credit-type",
        "credit_type",
        "creditType",
        done="Credit type set",
    ),
    Step(
        "method",
        "select_return_method",
        "POST",
        "/return-method",
        "method_id",
        "returnMethodId",
        done="Return method chosen",
    ),
    Step("submit", "submit", "POST", "/submit", confirm=True, done="Return submitted"),
    Step("cancel", "cancel", "POST", "/cancel", confirm=True, done="Draft cancelled"),
)
STEPS: dict[str, Step] = {step.name: step for step in _ALL}
# The console's step for each rel it can take (a rel Loop adds later has none: listed,
# never offered as a button).
STEP_OF_REL: dict[str, Step] = {step.rel: step for step in _ALL}
assert len(STEP_OF_REL) == len(_ALL), "one step per rel"

CONFIRM_TITLES = {
    "submit": "Submit the return for order {order}",
    "cancel": "Cancel the draft return for order {order}",
}
CONSEQUENCES = {
    "submit": "Loop creates the return as the draft stands: the customer gets its label "
    "or drop-off instructions, and the draft can no longer change.",
    "cancel": "Loop abandons the draft: nothing is returned, and the draft cannot be used again.",
}


def step_request(
    step: Step, draft_id: str, form: dict[str, str]
) -> tuple[str, str, dict[str, Any] | None]:
    """The API method, path and body that take `step` with the form's values (the API
    validates them: an empty or bad value comes back as its 422)."""
    path = step.path.replace("{item}", quote(form.get("item", "").strip(), safe=""))
    body = None
    if step.field is not None and step.key is not None:
        body = {step.key: form.get(step.field, "").strip()}
    return step.method, f"/v1/drafts/{quote(draft_id, safe='')}{path}", body
