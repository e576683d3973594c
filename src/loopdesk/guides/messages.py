"""The catalogue of the guide's messages: the contract between flows and templates.

Each message a flow may answer with (`Reply.message`) is listed here with a sample of the
variables its templates may read (`Reply.vars`), realistic and as full as a flow ever
fills them. `guides.render` checks at start-up that every message has a template on every
channel, and that no template (built-in or a merchant's override) reads a variable, or a
key inside one, that the sample lacks: the sample is what a template may rely on.

`variants` are further complete sets of variables a flow also sends (a return without a
carrier yet, no refund estimate...): the templates are rendered with each, so a branch
only they take is tried too.

Besides a message's variables, every template may read `shop_name`, `customer_name`,
`links` (the reply's `Link`s, `.url` and `.label`), `quick_replies` and `channel`
(`render.GLOBALS`); a message's variables never take those names.
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MessageSpec:
    sample: dict[str, Any]
    doc: str
    variants: tuple[dict[str, Any], ...] = ()


MESSAGES: dict[str, MessageSpec] = {}
# What every template may read besides its message's variables (`guides.render`).
GLOBALS = ("shop_name", "customer_name", "links", "quick_replies", "channel")


def register(
    name: str, *, doc: str, sample: dict[str, Any], variants: tuple[dict[str, Any], ...] = ()
) -> MessageSpec:
    """Add a message to the catalogue (at import time); a variant has the sample's keys."""
    if name in MESSAGES:
        raise ValueError(f"message {name!r} is registered twice")
    if name.startswith("_") or "/" in name:
        raise ValueError(f"message {name!r}: a name neither starts with _ nor holds a /")
    if set(sample) & set(GLOBALS):
        raise ValueError(f"message {name!r}: {sorted(set(sample) & set(GLOBALS))} are globals")
    for variant in variants:
        if set(variant) != set(sample) or missing_keys(sample, variant):
            raise ValueError(f"message {name!r}: a variant lacks keys of the sample")
    MESSAGES[name] = spec = MessageSpec(sample=sample, doc=doc, variants=variants)
    return spec


def missing_keys(sample: Any, value: Any, path: str = "") -> list[str]:
    """The keys of `sample` that `value` lacks, nested (lists against their first item;
    a null stands for a whole dict, as `estimate` does)."""
    if isinstance(sample, dict) and isinstance(value, dict):
        missing = []
        for key, inner in sample.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in value:
                missing.append(where)
            else:
                missing += missing_keys(inner, value[key], where)
        return missing
    if isinstance(sample, list) and sample and isinstance(value, list):
        return [
            m
            for index, item in enumerate(value)
            for m in missing_keys(sample[0], item, f"{path}[{index}]")
        ]
    return []


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of `base` with some keys changed: a variant of a sample."""
    copy = deepcopy(base)
    copy.update(changes)
    return copy


# One return as the `return_status` messages describe it. `stage` is the machine name
# of the return's stage (`domain.timeline.Stage`; `_words.j2` words it). `carrier`,
# `tracking_number` and `status_page_url` are null when Loop has none; `estimate` is null
# when nothing is due (cancelled, already refunded) or it cannot be computed, else when
# the refund, credit or exchange should land (`kind`: refund | credit | exchange; `date`
# ISO 8601; `date_words` the same date for a customer).
RETURN_SAMPLE: dict[str, Any] = {
    "order_name": "#1086",
    "stage": "on_its_way",
    "id": "118934",
    "outcome": "refund",
    "carrier": "UPS",
    "tracking_number": "1Z999AA10123456784",
    "status_page_url": "https://company.loopreturns.com/#/return/3f1c9a52-8d7e-5b6a-9c41-2e7f0b8d6a13",
    "estimate": {
        "kind": "refund",
        "date": "2026-03-13",
        "date_words": "Friday, March 13",
        "overdue": False,
    },
}
RETURN_NOT_SHIPPED: dict[str, Any] = _with(
    RETURN_SAMPLE,
    order_name="#1102",
    stage="label_unused",
    status_page_url="https://company.loopreturns.com/#/return/9b2d4e61-0c3a-5f8e-a7d2-61c5e9f3b804",
    carrier=None,
    tracking_number=None,
    estimate=None,
)
RETURN_PROCESSING: dict[str, Any] = _with(
    RETURN_SAMPLE,
    order_name="#1093",
    stage="processing",
    carrier="USPS",
    tracking_number="9400111899223856928499",
    status_page_url=None,
    estimate={
        "kind": "exchange",
        "date": "2026-03-10",
        "date_words": "Tuesday, March 10",
        "overdue": False,
    },
)

register(
    "handoff",
    doc="The guide hands the conversation to a person. `why`: asked | upstream (Loop) | "
    "tracking (Order Tracking) | not_understood | policy | problem (`_words.j2` words it).",
    sample={"why": "asked"},
)
register(
    "handoff.waiting",
    doc="A message after the hand-off: a person already has the conversation.",
    sample={},
)
register(
    "clarify",
    doc="The guide is not sure what the customer asks: `options` are the topics offered "
    "(intent names: return_status, start_return, return_exception, order_status, agent).",
    sample={"options": ["return_status", "start_return", "return_exception", "order_status"]},
    variants=({"options": ["return_status", "start_return"]},),
)
register(
    "fallback",
    doc="The message is about nothing the guide handles: say what it can do; `options` "
    "as for `clarify`.",
    sample={"options": ["return_status", "start_return", "return_exception", "order_status"]},
)
register(
    "return_status.one",
    doc="Where one return stands: `ret` (see RETURN_SAMPLE).",
    sample={"ret": RETURN_SAMPLE, "stale": False},
    variants=(
        {"ret": RETURN_NOT_SHIPPED, "stale": True},
        {"ret": RETURN_PROCESSING, "stale": False},
    ),
)
register(
    "return_status.several",
    doc="Where each of the customer's open returns stands, newest first: `returns`, "
    "a list of returns shaped as RETURN_SAMPLE.",
    sample={
        "returns": [RETURN_SAMPLE, RETURN_PROCESSING, RETURN_NOT_SHIPPED],
        "more": 2,
        "stale": False,
    },
    variants=({"returns": [RETURN_NOT_SHIPPED, RETURN_PROCESSING], "more": 0, "stale": True},),
)
register(
    "return_status.none",
    doc="The customer has no returns: say so and offer to start one.",
    sample={},
)

# --- start a return -----------------------------------------------------------------

# `field` names what proves the order is the customer's, per the shop's Loop setting:
# zip | email | phone. `lead` names a sentence said first (an exception's outcome):
# "" | exception.granted | exception.already_granted | exception.within_window.
_ORDERS = {"orders": ["#5101", "#5088", "#4970"]}
register(
    "start_return.ask_order",
    doc="Which order to return: `orders`, the customer's recent order names (may be empty).",
    sample=_ORDERS,
    variants=({"orders": []},),
)
register(
    "start_return.ask_verification",
    doc="Ask for the ZIP (or email, phone) of `order_name`.",
    sample={"order_name": "#5101", "field": "zip", "lead": ""},
    variants=(
        {"order_name": "#5101", "field": "email", "lead": "exception.granted"},
        {"order_name": "#5101", "field": "phone", "lead": "exception.within_window"},
    ),
)
register(
    "start_return.mismatch",
    doc="Loop refused the order with the answer given: one more try.",
    sample={"order_name": "#5101", "field": "zip"},
)
register(
    "start_return.mismatch_handoff",
    doc="Loop refused the order a second time: a person takes over.",
    sample={"order_name": "#5101", "field": "zip"},
)
register(
    "start_return.link",
    doc="The return link Loop created for `order_name` (`url`).",
    sample={
        "order_name": "#5101",
        "url": "https://company.loopreturns.com/#/link/5d1f0c1e-7c51-5a52-9b0e-3f2b9d8e4a10",
        "lead": "",
    },
    variants=(
        {
            "order_name": "#5101",
            "url": "https://company.loopreturns.com/#/link/5d1f0c1e-7c51-5a52-9b0e-3f2b9d8e4a10",
            "lead": "exception.granted",
        },
    ),
)

# --- return-window exceptions ------------------------------------------------------

register(
    "exception.ask_order",
    doc="Which order the exception is for: `orders` as for start_return.ask_order.",
    sample=_ORDERS,
    variants=({"orders": []},),
)
register(
    "exception.refused",
    doc="The policy refuses: `reason` is the merchant's own sentence for the rule.",
    sample={
        "order_name": "#5101",
        "reason": "Our return window closed more than 7 days ago for this order.",
    },
)
register(
    "exception.unknown",
    doc="The guide cannot tell whether the order qualifies (`reason`, the merchant's words).",
    sample={"order_name": "#5101", "reason": "We could not confirm when the order arrived."},
)

# --- where's my order ---------------------------------------------------------------

# One shipment: `status` as Order Tracking's enum (upper case), `eta`/`delivered_on` ISO
# dates or "", `eta_words` the ETA for a customer, `eta_pending` when the carrier has not
# set one, `tracking_url` "" when Order Tracking has none.
SHIPMENT_SAMPLE: dict[str, Any] = {
    "status": "TRANSIT",
    "carrier": "UPS",
    "tracking_code": "1Z999AA10123456784",
    "tracking_url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
    "eta": "2026-03-12",
    "eta_words": "Thursday, March 12",
    "eta_pending": False,
    "delivered_on": "",
    "last_event": "Departed shipping partner facility",
}
SHIPMENT_DELIVERED = _with(
    SHIPMENT_SAMPLE,
    status="DELIVERED",
    eta="",
    eta_words="",
    delivered_on="2026-03-02",
    last_event="Delivered, left at front door",
)
SHIPMENT_PENDING = _with(SHIPMENT_SAMPLE, eta="", eta_words="", eta_pending=True, tracking_url="")
ORDER_SAMPLE: dict[str, Any] = {"name": "#5101", "shipments": [SHIPMENT_SAMPLE]}
register(
    "order_status.ask_order",
    doc="Ask for the order number (none known for the customer).",
    sample={},
)
register(
    "order_status.not_found",
    doc="Order Tracking has no order `order_name`.",
    sample={"order_name": "#5101"},
)
register(
    "order_status.orders",
    doc="Each order's shipments: `orders` = [{name, shipments: [SHIPMENT_SAMPLE...]}].",
    sample={"orders": [ORDER_SAMPLE]},
    variants=(
        {
            "orders": [
                {"name": "#5101", "shipments": [SHIPMENT_DELIVERED, SHIPMENT_PENDING]},
                {"name": "#5102", "shipments": []},
            ]
        },
    ),
)
register(
    "order_status.problem",
    doc="A shipment is stalled, failed or returned: a person takes over.",
    sample={"order": ORDER_SAMPLE, "shipment": _with(SHIPMENT_SAMPLE, status="SHIPMENT_STALLED")},
)
register(
    "order_status.not_received",
    doc="Tracking says delivered, the customer did not get it: a person takes over.",
    sample={"order": ORDER_SAMPLE, "shipment": SHIPMENT_DELIVERED},
)
