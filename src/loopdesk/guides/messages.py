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
# of the return's stage, `stage_words` completes "Your return ... is ...". `carrier`,
# `tracking_number` and `status_page_url` are null when Loop has none; `estimate` is null
# when nothing is due (cancelled, already refunded) or it cannot be computed, else when
# the refund, credit or exchange should land (`kind`: refund | credit | exchange; `date`
# ISO 8601; `date_words` the same date for a customer).
RETURN_SAMPLE: dict[str, Any] = {
    "order_name": "#1086",
    "stage": "in_transit",
    "stage_words": "on its way to our warehouse",
    "carrier": "UPS",
    "tracking_number": "1Z999AA10123456784",
    "status_page_url": "https://company.loopreturns.com/#/return/3f1c9a52-8d7e-5b6a-9c41-2e7f0b8d6a13",
    "estimate": {"kind": "refund", "date": "2026-03-13", "date_words": "Friday 13 March"},
}
RETURN_NOT_SHIPPED: dict[str, Any] = _with(
    RETURN_SAMPLE,
    order_name="#1102",
    stage="label_unused",
    status_page_url="https://company.loopreturns.com/#/return/9b2d4e61-0c3a-5f8e-a7d2-61c5e9f3b804",
    stage_words="waiting to be sent back (its label has not been used yet)",
    carrier=None,
    tracking_number=None,
    estimate=None,
)
RETURN_PROCESSING: dict[str, Any] = _with(
    RETURN_SAMPLE,
    order_name="#1093",
    stage="processing",
    stage_words="at our warehouse, being processed",
    carrier="USPS",
    tracking_number="9400111899223856928499",
    status_page_url=None,
    estimate={"kind": "exchange", "date": "2026-03-10", "date_words": "Tuesday 10 March"},
)

register(
    "handoff",
    doc="The guide hands the conversation to a person. `reason` completes 'because ...' "
    "in the customer's terms; `queue` is the team's name, as the routing decision gives it.",
    sample={"reason": "the refund on this return needs a person to look at it", "queue": "Returns"},
)
register(
    "clarify",
    doc="The guide is not sure what the customer asks: `options` are the likely topics "
    "in words (also the reply's quick replies).",
    sample={"options": ["check on a return", "start a return", "track an order"]},
    variants=({"options": ["check on a return", "start a return"]},),
)
register(
    "fallback",
    doc="The message is about nothing the guide handles: say what it can do.",
    sample={},
)
register(
    "return_status.one",
    doc="Where one return stands: `ret` (see RETURN_SAMPLE).",
    sample={"ret": RETURN_SAMPLE},
    variants=({"ret": RETURN_NOT_SHIPPED}, {"ret": RETURN_PROCESSING}),
)
register(
    "return_status.several",
    doc="Where each of the customer's open returns stands, newest first: `returns`, "
    "a list of returns shaped as RETURN_SAMPLE.",
    sample={"returns": [RETURN_SAMPLE, RETURN_PROCESSING, RETURN_NOT_SHIPPED]},
    variants=({"returns": [RETURN_NOT_SHIPPED, RETURN_PROCESSING]},),
)
