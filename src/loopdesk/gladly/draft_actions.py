"""The Gladly app's draft-return actions: what each template does, in Python, and the
`_test_` cases with the draft each starts from.

Each action calls one `/v1/drafts` route (`api.routes.drafts`); `get_return_details`
calls `GET /v1/returns/details`. A draft case starts from a draft made first through
the same service (`Given`, asked of the sample service before the case's request), so
its inputs name real ids: the sandbox numbers drafts and items the same way on every
fresh run, and the cases run in the order of their folders.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import httpx

from loopdesk.errors import LoopdeskError, LoopValidationError

TEST_DIR = "_test_/data"
# The inputs' stand-ins for the ids of the draft a case starts from.
DRAFT = "<draft>"
ITEM = "<item>"
# Seeded sandbox variants (README: "Draft returns in the sandbox").
IN_STOCK = "41845504639229"  # #7102 Linen Shirt White / L
SOLD_OUT = "41845504639230"  # #7102 Linen Shirt Navy / M
PRICIER = "41845504639629"  # #7103 Packable Rain Jacket Black / L: 15.00 more


class SampleError(LoopdeskError):
    """A sample draft could not be made as its case says."""

    code = "export_failed"


@dataclass(frozen=True)
class DraftAction:
    name: str
    method: str
    path: str  # below the base URL; `{draft}` and `{item}` are the inputs' ids
    body: tuple[str, ...] | None  # the inputs sent (an empty body `{}`); None: no body


DRAFT_ACTIONS: Mapping[str, DraftAction] = {
    a.name: a
    for a in (
        DraftAction("check_eligibility", "POST", "/v1/drafts", ("orderName", "secondaryInput")),
        DraftAction("get_draft_return", "GET", "/v1/drafts/{draft}", None),
        DraftAction("add_return_item", "POST", "/v1/drafts/{draft}/items", ("orderLineItemId",)),
        DraftAction("remove_return_item", "DELETE", "/v1/drafts/{draft}/items/{item}", None),
        DraftAction(
            "set_return_reason", "POST", "/v1/drafts/{draft}/items/{item}/reason", ("reasonId",)
        ),
        DraftAction(
            "set_return_type", "POST", "/v1/drafts/{draft}/items/{item}/type", ("returnType",)
        ),
        DraftAction(
            "add_exchange_item",
            "POST",
            "/v1/drafts/{draft}/items/{item}/exchange",
            ("variantId",),
        ),
        DraftAction("finalize_items", "POST", "/v1/drafts/{draft}/finalize", ()),
        DraftAction("get_draft_totals", "GET", "/v1/drafts/{draft}/totals", None),
        DraftAction("set_credit_type", "POST", "/v1/drafts/{draft}/credit-type", ("creditType",)),
        DraftAction(
            "select_return_method",
            "POST",
            "/v1/drafts/{draft}/return-method",
            ("returnMethodId",),
        ),
        DraftAction("submit_return", "POST", "/v1/drafts/{draft}/submit", ()),
        DraftAction("cancel_draft_return", "POST", "/v1/drafts/{draft}/cancel", ()),
    )
}
DETAILS_ACTION = "get_return_details"
DETAILS_PATH = "/v1/returns/details"
DETAILS_QUERY = ("returnId", "orderId", "orderName", "currencyType")  # in the template's order


# --- what the templates do ---------------------------------------------------------


def draft_action_url(base_url: str, action: str, inputs: Mapping[str, Any]) -> str:
    if action == DETAILS_ACTION:
        query = [
            f"{name}={quote_plus(str(inputs[name]))}" for name in DETAILS_QUERY if inputs.get(name)
        ]
        return base_url + DETAILS_PATH + ("?" + "&".join(query) if query else "")
    path = DRAFT_ACTIONS[action].path.format(
        draft=quote_plus(str(inputs.get("draftReturnId", ""))),
        item=quote_plus(str(inputs.get("returningItemId", ""))),
    )
    return base_url + path


def draft_action_body(action: str, inputs: Mapping[str, Any]) -> dict[str, Any] | None:
    if action == DETAILS_ACTION:
        return None
    sent = DRAFT_ACTIONS[action].body
    if sent is None:
        return None
    body = {name: inputs.get(name) for name in sent}
    if action == "check_eligibility":
        if "isGift" in inputs:
            body["isGift"] = inputs["isGift"]
        if inputs.get("conversationId"):
            body["conversationId"] = inputs["conversationId"]
    return body


def draft_action_output(status: int, answer: Any) -> Any:
    """A draft step's result: the draft on a 2xx, else the error with what helps the
    next move (`_partials/draft_result.gtpl`)."""
    if 200 <= status < 300:
        return answer
    if not (isinstance(answer, dict) and isinstance(answer.get("error"), dict)):
        raise SampleError(f"loopdesk answered HTTP {status} without its error body")
    error = answer["error"]
    out = {k: error[k] for k in ("code", "message") if k in error}
    details = error.get("details")
    if isinstance(details, dict):
        if "nextSteps" in details:
            out["nextSteps"] = details["nextSteps"]
        if error.get("code") == LoopValidationError.code and "errors" in details:
            out["loopErrors"] = details["errors"]
        if "outcomeUnknown" in details:
            out["outcomeUnknown"] = details["outcomeUnknown"]
    return {"error": out}


# --- the cases ----------------------------------------------------------------------


@dataclass(frozen=True)
class Given:
    """A draft of `order` (checked against `zip`), then `steps`: (step, value) with step
    one of add (an order line item), reason, type, exchange, finalize, credit, method;
    the returning item is the first one added."""

    order: str
    zip: str
    steps: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DraftCase:
    action: str
    name: str
    inputs: dict[str, Any]
    given: Given | None = None

    @property
    def folder(self) -> str:
        return f"actions/{self.action}/{TEST_DIR}/{self.name}"


_STEPS = {
    "add": ("items", "orderLineItemId"),
    "reason": ("items/{item}/reason", "reasonId"),
    "type": ("items/{item}/type", "returnType"),
    "exchange": ("items/{item}/exchange", "variantId"),
    "finalize": ("finalize", None),
    "credit": ("credit-type", "creditType"),
    "method": ("return-method", "returnMethodId"),
}


async def prepare(client: httpx.AsyncClient, given: Given) -> dict[str, str]:
    """Make the draft `given` describes through loopdesk (`client`): its ids."""
    started = await _post(
        client, "/v1/drafts", {"orderName": given.order, "secondaryInput": given.zip}, 201
    )
    ids = {DRAFT: str(started["draftId"])}
    for step, value in given.steps:
        tail, name = _STEPS[step]
        path = f"/v1/drafts/{ids[DRAFT]}/" + tail.format(item=ids.get(ITEM, ""))
        view = await _post(client, path, {name: value} if name else None)
        if step == "add" and ITEM not in ids:
            ids[ITEM] = str(view["returningItems"][0]["id"])
    return ids


def filled(inputs: Mapping[str, Any], ids: Mapping[str, str]) -> dict[str, Any]:
    """The case's inputs with the given draft's ids in place of their stand-ins."""
    return {k: ids.get(v, v) if isinstance(v, str) else v for k, v in inputs.items()}


async def _post(
    client: httpx.AsyncClient, path: str, body: Any, status: int = 200
) -> dict[str, Any]:
    response = await client.post(path, json=body)
    if response.status_code != status:
        raise SampleError(
            f"a sample draft step {path} answered HTTP {response.status_code}: "
            f"{response.text[:200]}"
        )
    answer: dict[str, Any] = response.json()
    return answer


_REFUND = Given("#7101", "30301")
_EXCHANGE = Given("#7102", "60601", (("add", "7102001"), ("reason", "2"), ("type", "exchange")))
_ITEM_IN = Given("#7101", "30301", (("add", "7101002"), ("reason", "5")))
_FINALIZED = Given("#7101", "30301", (("add", "7101002"), ("reason", "5"), ("finalize", "")))
_READY = Given(
    "#7101",
    "30301",
    (("add", "7101001"), ("reason", "1"), ("finalize", ""), ("credit", "refund"), ("method", "1")),
)
_AMOUNT_DUE = Given(
    "#7103",
    "94103",
    (
        ("add", "7103001"),
        ("reason", "2"),
        ("type", "exchange"),
        ("exchange", PRICIER),
        ("finalize", ""),
        ("method", "1"),
    ),
)
_ON_DRAFT = {"draftReturnId": DRAFT}
_ON_ITEM = {"draftReturnId": DRAFT, "returningItemId": ITEM}

DRAFT_CASES = (
    DraftCase(
        "check_eligibility",
        "success",
        {"orderName": "#7101", "secondaryInput": "30301", "conversationId": "sample-2"},
    ),
    DraftCase("check_eligibility", "final_sale", {"orderName": "#7104", "secondaryInput": "98101"}),
    DraftCase("check_eligibility", "wrong_zip", {"orderName": "#7101", "secondaryInput": "00000"}),
    DraftCase("get_draft_return", "exchange_options", _ON_DRAFT, _EXCHANGE),
    DraftCase("get_draft_return", "unknown", {"draftReturnId": "1"}),
    DraftCase("add_return_item", "success", {**_ON_DRAFT, "orderLineItemId": "7101001"}, _REFUND),
    DraftCase(
        "add_return_item",
        "final_sale",
        {**_ON_DRAFT, "orderLineItemId": "7104001"},
        Given("#7104", "98101"),
    ),
    DraftCase(
        "remove_return_item", "success", _ON_ITEM, Given("#7101", "30301", (("add", "7101002"),))
    ),
    DraftCase(
        "set_return_reason",
        "success",
        {**_ON_ITEM, "reasonId": "5"},
        Given("#7101", "30301", (("add", "7101002"),)),
    ),
    DraftCase(
        "set_return_type",
        "exchange",
        {**_ON_ITEM, "returnType": "exchange"},
        Given("#7102", "60601", (("add", "7102001"),)),
    ),
    DraftCase("add_exchange_item", "success", {**_ON_ITEM, "variantId": IN_STOCK}, _EXCHANGE),
    DraftCase("add_exchange_item", "sold_out", {**_ON_ITEM, "variantId": SOLD_OUT}, _EXCHANGE),
    DraftCase("finalize_items", "success", _ON_DRAFT, _ITEM_IN),
    DraftCase("finalize_items", "not_offered", _ON_DRAFT, _REFUND),
    DraftCase("get_draft_totals", "amount_due", _ON_DRAFT, _AMOUNT_DUE),
    DraftCase("set_credit_type", "store_credit", {**_ON_DRAFT, "creditType": "gift"}, _FINALIZED),
    DraftCase("select_return_method", "dropoff", {**_ON_DRAFT, "returnMethodId": "3"}, _FINALIZED),
    DraftCase("submit_return", "success", _ON_DRAFT, _READY),
    DraftCase("submit_return", "amount_due", _ON_DRAFT, _AMOUNT_DUE),
    DraftCase("cancel_draft_return", "success", _ON_DRAFT, _REFUND),
    DraftCase("get_return_details", "by_order_name", {"orderName": "#1086"}),
    DraftCase("get_return_details", "not_found", {"returnId": "1"}),
    DraftCase("get_return_details", "nothing_given", {}),
)
# What each case's request answers (the export checks it, so a sample never drifts).
DRAFT_CASE_STATUS = {
    ("check_eligibility", "success"): 201,
    ("check_eligibility", "final_sale"): 201,
    ("check_eligibility", "wrong_zip"): 422,
    ("get_draft_return", "unknown"): 404,
    ("add_return_item", "final_sale"): 422,
    ("add_exchange_item", "sold_out"): 422,
    ("finalize_items", "not_offered"): 409,
    ("submit_return", "amount_due"): 409,
    ("get_return_details", "not_found"): 404,
    ("get_return_details", "nothing_given"): 422,
}


def expected_status(case: DraftCase) -> int:
    return DRAFT_CASE_STATUS.get((case.action, case.name), 200)
