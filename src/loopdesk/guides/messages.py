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

# --- create a return in the conversation (flows.create_return) -----------------------

# An item as the customer bought it: `price` already in words ("$54.00"). `lead` names
# a sentence said first (`_draft_words.j2`): "" | not_understood | undone |
# nothing_to_undo | no_stock | sold_out | locked | restarted | all_refund | all_gift
# (refund and store credit cannot mix in one return: the latest choice holds).
# Numbered lists match the quick replies, in order (an SMS customer answers with the
# number).
_ITEM = {"title": "Linen Shirt", "variant": "White / M", "price": "$54.00"}
_SWEATER = {"title": "Merino Crew Sweater", "variant": "Oat / M", "price": "$89.00"}
# `code`: Loop's ineligibility code (final-sale, outside-return-window, already-returned,
# or another the words say plainly), null when Loop gives none.
_REFUSED = {"title": "Silk Scarf", "variant": "Stripe", "price": "$62.25", "code": "final-sale"}
register(
    "create_return.items",
    doc="Which items to return: `items` the returnable ones, numbered; `refused` those "
    "that cannot be returned with Loop's code; `settled` those already in the return.",
    sample={
        "order_name": "#7104",
        "items": [{"number": 1, **_ITEM}, {"number": 2, **_SWEATER}],
        "refused": [_REFUSED],
        "settled": [_ITEM],
        "lead": "not_understood",
    },
    variants=(
        {
            "order_name": "#7101",
            "items": [{"number": 1, **_SWEATER}],
            "refused": [],
            "settled": [],
            "lead": "",
        },
        {
            "order_name": "#7101",
            "items": [],
            "refused": [{**_REFUSED, "code": "already-returned"}, {**_REFUSED, "code": None}],
            "settled": [_ITEM],
            "lead": "undone",
        },
    ),
)
register(
    "create_return.none_eligible",
    doc="Nothing in the order can be returned: `refused` (as for create_return.items); "
    "`window` when an item is past the return window (an exception may help).",
    sample={
        "order_name": "#7105",
        "refused": [{**_REFUSED, "code": "outside-return-window"}, _REFUSED],
        "window": True,
    },
    variants=({"order_name": "#7105", "refused": [_REFUSED], "window": False},),
)
_REASONS = [
    {"number": n, "name": name}
    for n, name in enumerate(
        (
            "Item was too big",
            "Item was too small",
            "Style not as expected",
            "No longer needed",
            "Arrived damaged",
            "Stopped working",
            "Received the wrong size",
            "Material feels cheap",
        ),
        start=1,
    )
]
register(
    "create_return.reason",
    doc="Why `item` goes back: `reasons`, the shop's, numbered.",
    sample={"item": _ITEM, "reasons": _REASONS, "lead": "not_understood"},
    variants=(
        {"item": _SWEATER, "reasons": _REASONS[:2], "lead": ""},
        {"item": _SWEATER, "reasons": _REASONS, "lead": "all_gift"},
    ),
)
register(
    "create_return.outcome",
    doc="Refund, store credit or exchange for `item`: `options` among refund | gift | "
    "exchange (no exchange when nothing else is in stock: lead no_stock).",
    sample={"item": _ITEM, "options": ["refund", "gift", "exchange"], "lead": "undone"},
    variants=({"item": _ITEM, "options": ["refund", "gift"], "lead": "no_stock"},),
)
register(
    "create_return.variant",
    doc="What to exchange `item` for: `variants` in stock, numbered (`more`: what it "
    'costs above the item, "" when nothing); `others`, numbered after them, refund | '
    "gift instead; `sold_out` the variant the customer named that is sold out (lead "
    'sold_out), else "".',
    sample={
        "item": _ITEM,
        "variants": [
            {"number": 1, "variant": "White / S", "more": ""},
            {"number": 2, "variant": "White / L", "more": "$5.00"},
        ],
        "others": [{"number": 3, "key": "refund"}, {"number": 4, "key": "gift"}],
        "sold_out": "Navy / M",
        "lead": "sold_out",
    },
    variants=(
        {
            "item": _SWEATER,
            "variants": [{"number": 1, "variant": "Charcoal / M", "more": "$10.00"}],
            "others": [{"number": 2, "key": "refund"}, {"number": 3, "key": "gift"}],
            "sold_out": "",
            "lead": "",
        },
    ),
)
register(
    "create_return.method",
    doc="How the items travel back: `methods` numbered, `type` Loop's (mail, dropoff...).",
    sample={
        "methods": [
            {"number": 1, "name": "Prepaid mail-in label", "type": "mail"},
            {"number": 2, "name": "Happy Returns", "type": "dropoff"},
        ],
        "lead": "locked",
    },
    variants=(
        {"methods": [{"number": 1, "name": "Happy Returns", "type": "dropoff"}], "lead": ""},
    ),
)
register(
    "create_return.confirm",
    doc="What will happen, before the return is created: each of `items` with its "
    "`outcome` (refund | gift | exchange, `exchange_for` the variant), the `method`, "
    'the exchange `fee` in words ("" when none).',
    sample={
        "order_name": "#7102",
        "items": [
            {**_ITEM, "outcome": "exchange", "exchange_for": "White / L"},
            {**_SWEATER, "outcome": "refund", "exchange_for": ""},
        ],
        "method": {"name": "Prepaid mail-in label", "type": "mail"},
        "fee": "$5.00",
        "lead": "locked",
    },
    variants=(
        {
            "order_name": "#7101",
            "items": [{**_SWEATER, "outcome": "gift", "exchange_for": ""}],
            "method": {"name": "Happy Returns", "type": "dropoff"},
            "fee": "",
            "lead": "",
        },
    ),
)
_STATUS_URL = "https://company.loopreturns.com/#/return/9b2d4e61-0c3a-5f8e-a7d2-61c5e9f3b804"
register(
    "create_return.submitted",
    doc='The return is created: `url` its status page (Loop\'s), "" when Loop gave none.',
    sample={"order_name": "#7101", "url": _STATUS_URL},
    variants=({"order_name": "#7101", "url": ""},),
)
register(
    "create_return.cancelled",
    doc="The customer abandoned the return: the draft is cancelled, nothing was created.",
    sample={"order_name": "#7101"},
)
register(
    "create_return.closed",
    doc="The draft is no longer open (`state`: expired | cancelled | submitted).",
    sample={"order_name": "#7101", "state": "expired"},
    variants=(
        {"order_name": "#7101", "state": "cancelled"},
        {"order_name": "#7101", "state": "submitted"},
    ),
)
register(
    "create_return.amount_due",
    doc='The exchange costs more than the items returned: `amount` to pay ("" when '
    "Loop does not say): a person takes over the draft.",
    sample={"order_name": "#7103", "amount": "$15.00"},
    variants=({"order_name": "#7103", "amount": ""},),
)
register(
    "create_return.submit_unknown",
    doc="Loop did not confirm the submit: whether the return exists is unknown; a person checks.",
    sample={"order_name": "#7101"},
)
register(
    "create_return.submit_refused",
    doc="Loop refused the submit: `code` Loop's (draft-return-not-actionable, "
    'returns-unavailable-for-order, or another; "" when none), or `unavailable` (Loop '
    "failed and the draft shows no return); a person takes over.",
    sample={"order_name": "#7103", "code": "returns-unavailable-for-order"},
    variants=(
        {"order_name": "#7103", "code": "draft-return-not-actionable"},
        {"order_name": "#7101", "code": "unavailable"},
        {"order_name": "#7103", "code": ""},
    ),
)
