"""A draft return as its page shows it: the API's draft view (`GET /v1/drafts/{id}`,
camelCase), read for the templates, and Loop's codes in plain words.

Nothing is decided here that the API decides: which steps are legal is read from the
view's `links` only, and the amounts are Loop's integers in minor units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loopdesk.web.api import Answer
from loopdesk.web.draft_steps import STEP_OF_REL, STEPS, Step

# Loop's states (`created`, `items-finalized`, then one of the three ends); other
# strings are shown as they came (Loop's state is passed through, never assumed).
STATE_WORDS = {
    "created": "Open: choosing the items",
    "items-finalized": "Items confirmed: choosing how it goes back",
    "submitted": "Submitted",
    "cancelled": "Cancelled",
    "expired": "Expired",
}
ENDED_STATES = ("submitted", "cancelled", "expired")
INELIGIBLE_WORDS = {
    "final-sale": "Final sale: it cannot be returned",
    "outside-return-window": "Past the return window",
    "already-returned": "Already in another return",
}
RETURN_TYPE_WORDS = {"credit": "Refund or store credit", "exchange": "Exchange"}
CREDIT_TYPE_WORDS = {"refund": "Refund to the original payment", "gift": "Store credit"}
# What each rel asks for, for the "next steps" list.
REL_WORDS = {
    "add-returning-item": "add an item",
    "remove-returning-item": "remove an item",
    "set-return-reason": "give the reason",
    "set-return-type": "choose refund or exchange",
    "add-exchange-item": "choose what to exchange for",
    "finalize-items": "confirm the items",
    "totals": "see the totals",
    "set-credit-type": "choose refund or store credit",
    "select-return-method": "choose how the items go back",
    "submit-draft-return": "submit the return",
    "cancel-draft-return": "cancel the draft",
}
# Loop's draft error codes, when Loop sends no message of its own.
LOOP_CODE_WORDS = {
    "draft-return-not-actionable": "Loop will not submit this draft as it stands "
    "(for instance, an amount is due and not paid yet).",
    "action-validation-failed": "That step is not available in the draft's current state.",
    "returns-unavailable-for-order": "No return policy covers this order any more.",
    "order-not-found": "No order was found with that name.",
    "secondary-input-mismatch": "The ZIP, email or phone does not match the order.",
    "unsupported-feature": "Loop's Return Create API is not enabled for this shop.",
}
# loopdesk's own error codes on the draft routes, when a plain sentence helps.
CODE_WORDS = {
    "draft_step_not_allowed": "That step is not offered for this draft now (the page was "
    "out of date): the draft below is as Loop has it.",
    "drafts_disabled": "Returns are not created in the conversation for this shop "
    "(`[returns] create_in_conversation = false`): send a return link instead.",
}


def words(code: object, table: dict[str, str]) -> str:
    """A code in plain words: the table's, else the code with its dashes as spaces."""
    text = str(code or "").strip()
    if text in table:
        return table[text]
    return text.replace("-", " ").replace("_", " ").capitalize() or "Not known"


def _text(value: object) -> str:
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Problem:
    """A failed call, as the page shows it: loopdesk's code and message, and Loop's own
    errors (`details.errors`) each with its code and message in plain words."""

    status: int
    code: str
    message: str
    plain: str
    loop_errors: tuple[tuple[str, str], ...]  # (code, message in words; "" when said above)
    outcome_unknown: bool

    @classmethod
    def of(cls, answer: Answer) -> Problem:
        error = answer.error
        raw = error.get("details")
        details: dict[str, Any] = raw if isinstance(raw, dict) else {}
        top = _text(error.get("message"))
        found = []
        for entry in details.get("errors") or ():
            if isinstance(entry, dict):
                code = _text(entry.get("code"))
                message = _text(entry.get("message")).strip()
                if not message or message == code:  # the peer's rule puts the code there
                    message = words(code, LOOP_CODE_WORDS)
                if message == top:  # said once, above; Loop's code still shown
                    message = ""
                if code or message:
                    found.append((code, message))
        code = _text(error.get("code"))
        return cls(
            status=answer.status,
            code=code,
            message=top,
            plain=CODE_WORDS.get(code, ""),
            loop_errors=tuple(found),
            outcome_unknown=bool(details.get("outcomeUnknown")),
        )


@dataclass(frozen=True)
class Line:
    """One of the order's line items, and what the draft can do with it."""

    raw: dict[str, Any]
    returning_id: str | None  # the returning item's id when it is in the return
    addable: bool

    @property
    def id(self) -> str:
        return _text(self.raw.get("id"))

    @property
    def name(self) -> str:
        title = _text(self.raw.get("title")) or f"Line item {self.id}"
        variant = _text(self.raw.get("variantTitle"))
        return f"{title} — {variant}" if variant and variant != "Default Title" else title

    @property
    def eligible(self) -> bool:
        return self.raw.get("eligible") is True

    @property
    def why_not(self) -> str:
        return words(self.raw.get("ineligibilityCode"), INELIGIBLE_WORDS)


@dataclass
class DraftPage:
    """The draft view, with the totals when they were read apart (`GET .../totals`)."""

    view: dict[str, Any]
    totals_answer: Answer | None = None
    emails: str = ""
    links: list[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.links = [x for x in self.view.get("links") or () if isinstance(x, dict)]

    # --- the draft -------------------------------------------------------------------

    @property
    def id(self) -> str:
        return _text(self.view.get("draftId"))

    @property
    def state(self) -> str:
        return _text(self.view.get("state"))

    @property
    def state_words(self) -> str:
        return words(self.state, STATE_WORDS)

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES or bool(self.view.get("returnId"))

    @property
    def order_name(self) -> str:
        return _text(self.view.get("orderName"))

    @property
    def currency(self) -> str:
        return _text(self.view.get("currency"))

    # --- what Loop offers now ----------------------------------------------------------

    def offers(self, rel: str, item_id: str | None = None) -> bool:
        """Whether the links hold `rel` (for one returning item: a link on it)."""
        return any(
            link.get("rel") == rel and (item_id is None or _for_item(link, item_id))
            for link in self.links
        )

    def can(self, step: Step, item_id: str | None = None) -> bool:
        return self.offers(step.rel, item_id if step.per_item else None)

    @property
    def next_steps(self) -> list[tuple[str, str, bool]]:
        """(rel, in words, required) for each rel the links hold, in Loop's order."""
        steps: dict[str, tuple[str, str, bool]] = {}
        for link in self.links:
            rel = _text(link.get("rel"))
            required = link.get("isRequired") is True
            before = steps.get(rel)
            steps[rel] = (rel, words(rel, REL_WORDS), required or bool(before and before[2]))
        return list(steps.values())

    @property
    def unknown_steps(self) -> list[str]:
        """Rels Loop offers that the console cannot take (shown, not offered)."""
        return [rel for rel, _, _ in self.next_steps if rel not in STEP_OF_REL]

    # --- items -------------------------------------------------------------------------

    @property
    def returning(self) -> list[dict[str, Any]]:
        return [x for x in self.view.get("returningItems") or () if isinstance(x, dict)]

    @property
    def lines(self) -> list[Line]:
        by_line = {_text(r.get("orderLineItemId")): _text(r.get("id")) for r in self.returning}
        can_add = self.offers(STEPS["add-item"].rel)
        found = []
        for raw in self.view.get("lineItems") or ():
            if not isinstance(raw, dict):
                continue
            returning_id = by_line.get(_text(raw.get("id")))
            addable = can_add and returning_id is None and raw.get("eligible") is True
            found.append(Line(raw, returning_id, addable))
        return found

    def line_of(self, item: dict[str, Any]) -> Line | None:
        wanted = _text(item.get("orderLineItemId"))
        return next((line for line in self.lines if line.id == wanted), None)

    def item_name(self, item: dict[str, Any]) -> str:
        line = self.line_of(item)
        return line.name if line else f"Line item {_text(item.get('orderLineItemId'))}"

    @property
    def reasons(self) -> list[dict[str, Any]]:
        return [x for x in self.view.get("reasons") or () if isinstance(x, dict)]

    def reason_name(self, reason_id: object) -> str:
        if reason_id is None or reason_id == "":
            return ""
        found = next((r for r in self.reasons if _text(r.get("id")) == _text(reason_id)), None)
        return _text(found.get("name")) if found else f"Reason {reason_id}"

    def variants_for(self, item_id: object) -> list[dict[str, Any]]:
        """The exchange catalog of one returning item (empty until it is an exchange)."""
        for options in self.view.get("exchangeOptions") or ():
            if isinstance(options, dict) and _text(options.get("returningItemId")) == _text(
                item_id
            ):
                return [v for v in options.get("variants") or () if isinstance(v, dict)]
        return []

    def variant_name(self, item: dict[str, Any]) -> str:
        chosen = _text(item.get("exchangeVariantId"))
        if not chosen:
            return ""
        for variant in self.variants_for(item.get("id")):
            if _text(variant.get("variantId")) == chosen:
                return variant_label(variant)
        return f"Variant {chosen}"

    # --- after the items ---------------------------------------------------------------

    @property
    def methods(self) -> list[dict[str, Any]]:
        return [x for x in self.view.get("returnMethodOptions") or () if isinstance(x, dict)]

    @property
    def totals(self) -> dict[str, Any] | None:
        """The totals read apart when they were, else the view's own."""
        if self.totals_answer is not None and self.totals_answer.ok:
            body = self.totals_answer.body
            inner = body.get("totals") if isinstance(body.get("totals"), dict) else body
            if isinstance(inner, dict) and ("amountDue" in inner or "isDifferenceCovered" in inner):
                return inner
        totals = self.view.get("totals")
        return totals if isinstance(totals, dict) else None

    @property
    def amount_due(self) -> dict[str, Any] | None:
        totals = self.totals or {}
        due = totals.get("amountDue")
        return due if isinstance(due, dict) else None

    @property
    def exchange_fee(self) -> dict[str, Any] | None:
        fee = (self.totals or {}).get("exchangeFee")
        return fee if isinstance(fee, dict) else None

    @property
    def return_id(self) -> str:
        return _text(self.view.get("returnId"))

    @property
    def status_page_url(self) -> str:
        url = _text(self.view.get("statusPageUrl"))
        return url if url.startswith(("https://", "http://")) else ""


def variant_label(variant: dict[str, Any]) -> str:
    title = _text(variant.get("title"))
    variant_title = _text(variant.get("variantTitle"))
    if title and variant_title:
        return f"{title} — {variant_title}"
    return title or variant_title or f"Variant {_text(variant.get('variantId'))}"


def _for_item(link: dict[str, Any], item_id: str) -> bool:
    """A link on one returning item: its `returningItemId` when the view gives one, else
    the item's id as a segment of the link's path (Loop's hrefs are
    `.../returning-items/{id}/...`)."""
    if link.get("returningItemId") is not None:
        return _text(link.get("returningItemId")) == item_id
    path = _text(link.get("href")).split("?")[0]
    return bool(item_id) and item_id in path.split("/")


@dataclass(frozen=True)
class Summary:
    """One row of `GET /v1/drafts`."""

    raw: dict[str, Any]

    @property
    def id(self) -> str:
        return _text(self.raw.get("draftId") or self.raw.get("id"))

    @property
    def order_name(self) -> str:
        return _text(self.raw.get("orderName"))

    @property
    def state(self) -> str:
        return _text(self.raw.get("state"))

    @property
    def state_words(self) -> str:
        return words(self.state, STATE_WORDS)

    @property
    def actor(self) -> str:
        return _text(self.raw.get("key") or self.raw.get("actor"))

    @property
    def return_id(self) -> str:
        return _text(self.raw.get("returnId"))

    @property
    def updated(self) -> str | None:
        value = self.raw.get("updatedAt") or self.raw.get("createdAt")
        return None if value is None else str(value)


def summaries(answer: Answer | None, order_names: set[str] | None = None) -> list[Summary]:
    """The list's rows (those of `order_names` only, when given: `#7101` and `7101` match)."""
    if answer is None or not answer.ok:
        return []
    rows = [Summary(x) for x in answer.body.get("items") or () if isinstance(x, dict)]
    if order_names is None:
        return rows
    wanted = {order_key(n) for n in order_names} - {""}
    return [r for r in rows if order_key(r.order_name) in wanted]


def order_key(name: object) -> str:
    return str(name or "").strip().lstrip("#").casefold()
