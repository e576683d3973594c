"""Create the whole return in the conversation, through Loop's Draft Returns API.

Once the order is proven the customer's (`start_return`), the guide opens a draft and
walks it with the customer, one closed question at a time:

    items -> for each item: reason -> refund / store credit / exchange (-> variant)
          -> finalize -> totals -> return method -> confirm -> submit -> status page

Loop's draft is the source of truth: each turn reads it again (`DraftDesk.get`), the
choices offered are what it holds (eligible items, the shop's reasons, the exchange
catalog, the return methods), and every write goes through `DraftDesk`, which checks
the draft's links and audits it. The conversation keeps only where it is
(`state.DraftProgress`).

"undo" / "back" reopens the last step, "cancel" / "never mind" abandons (the draft is
cancelled), "start over" begins a new draft. The guide hands over, leaving the draft
open with its id in the summary, when money is due, when the customer asks for a
person, when it does not understand twice, and when Loop fails; at submit it never
claims a return it could not confirm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loopdesk.domain.drafts import Draft, ExchangeVariant, allows
from loopdesk.domain.money import minor_money
from loopdesk.drafts import DraftDesk, DraftResult
from loopdesk.guides.choices import Option, control, pick_exact, pick_many, pick_one
from loopdesk.guides.context import Step, Turn
from loopdesk.guides.flows.orders import same_order
from loopdesk.guides.reply import Link, Reply
from loopdesk.guides.state import DraftProgress

MAX_NOT_UNDERSTOOD = 2  # as the engine: the second answer in a row not understood hands over
TERMINAL = frozenset({"submitted", "cancelled", "expired"})
# The customer's three ways to be paid back; Loop's return type and credit type of each.
OUTCOMES: tuple[Option, ...] = (
    Option("refund", "Refund", ("refund", "money", "original payment", "card")),
    Option("gift", "Store credit", ("store credit", "credit", "gift card", "voucher")),
    Option("exchange", "Exchange", ("exchange", "swap", "different size", "another", "other")),
)
CONFIRM_REPLIES = ("Yes, create it", "Undo", "Cancel")
# Words that name a return method by its type, besides its name.
METHOD_WORDS = {
    "mail": ("mail", "post", "label", "ship", "prepaid"),
    "dropoff": ("drop", "dropoff", "drop-off", "location", "in person"),
}
UNAVAILABLE = frozenset({"loop_unavailable", "loop_rate_limited"})
# Loop's status for "the shop has not got the Return Create API" (the beta): send links.
NOT_ENABLED = frozenset({401, 403})


# --- what the draft holds, as the customer sees it -------------------------------------


@dataclass(frozen=True)
class Line:
    """An order line item: what the customer bought."""

    id: str
    title: str
    variant: str
    price: int
    variant_id: str | None

    @property
    def label(self) -> str:
        return f"{self.title} {self.variant}".strip()

    def words(self, currency: str | None) -> dict[str, Any]:
        return {
            "title": self.title,
            "variant": self.variant,
            "price": minor_money(self.price, currency),
        }


def _currency(draft: Draft) -> str | None:
    return draft.order.currency if draft.order else None


def _lines(draft: Draft) -> dict[str, Line]:
    lines = draft.order.line_items if draft.order else ()
    return {
        item.id: Line(
            item.id,
            item.title or "item",
            item.variant_title or "",
            item.price,
            item.provider_variant_id,
        )
        for item in lines
        if item.id
    }


def _line(draft: Draft, line_id: str | None) -> Line:
    return _lines(draft).get(line_id or "") or Line(line_id or "", "item", "", 0, None)


def _returning_line(draft: Draft, returning_id: str) -> Line:
    item = next((i for i in draft.returning_items if i.id == returning_id), None)
    return _line(draft, item.order_line_item_id if item else None)


def _addable(draft: Draft) -> list[Line]:
    """Eligible items not in the return yet, in the order's order."""
    added = {i.order_line_item_id for i in draft.returning_items}
    eligible = {i.order_line_item_id for i in draft.eligible_items}
    return [line for line in _lines(draft).values() if line.id in eligible and line.id not in added]


def _refused(draft: Draft) -> list[dict[str, Any]]:
    return [
        {**_line(draft, i.order_line_item_id).words(_currency(draft)), "code": i.ineligibility_code}
        for i in draft.ineligible_items
    ]


def _labelled(labels: Sequence[str]) -> list[str]:
    """Labels made unique (two identical items), so each quick reply names one."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out


def _item_options(lines: Sequence[Line]) -> list[Option]:
    labels = _labelled([line.label for line in lines])
    return [Option(line.id, label) for line, label in zip(lines, labels, strict=True)]


def _reason_options(draft: Draft) -> list[Option]:
    names = _labelled([r.name or f"Reason {r.id}" for r in draft.reasons])
    return [Option(r.id, name) for r, name in zip(draft.reasons, names, strict=True)]


def _method_options(draft: Draft) -> list[Option]:
    methods = [m for m in draft.return_method_options if m.id]
    names = _labelled([m.name or f"Method {m.id}" for m in methods])
    return [
        Option(str(m.id), name, METHOD_WORDS.get(m.type or "", ()))
        for m, name in zip(methods, names, strict=True)
    ]


def _variants(draft: Draft, returning_id: str) -> list[ExchangeVariant]:
    """The exchange catalog of one returning item, without the variant bought."""
    bought = _returning_line(draft, returning_id).variant_id
    for options in draft.exchange_options:
        if options.returning_item_id == returning_id:
            return [v for v in options.variants if v.variant_id and v.variant_id != bought]
    return []


def _variant_options(variants: Sequence[ExchangeVariant]) -> list[Option]:
    labels = _labelled([v.variant_title or v.title or f"Variant {v.variant_id}" for v in variants])
    return [
        Option(str(v.variant_id), label, tuple(o.value for o in v.options))
        for v, label in zip(variants, labels, strict=True)
    ]


def _outcome_options(progress: DraftProgress) -> list[Option]:
    if progress.item in progress.no_exchange:
        return [o for o in OUTCOMES if o.key != "exchange"]
    return list(OUTCOMES)


# --- replies ---------------------------------------------------------------------------


def _ask_items(turn: Turn, draft: Draft, lead: str = "") -> Step:
    progress = _progress(turn)
    progress.step = "items"
    turn.state.awaiting = "draft"
    lines = _addable(draft)
    options = _item_options(lines)
    currency = _currency(draft)
    settled = [_returning_line(draft, rid).words(currency) for rid in progress.settled]
    items = [{"number": n, **line.words(currency)} for n, line in enumerate(lines, start=1)]
    variables = {
        "order_name": progress.order_name,
        "items": items,
        "refused": _refused(draft),
        "settled": settled,
        "lead": lead,
    }
    return Step(
        Reply("create_return.items", variables, quick_replies=tuple(o.label for o in options))
    )


def _ask_reason(turn: Turn, draft: Draft, lead: str = "") -> Step:
    progress = _progress(turn)
    progress.step = "reason"
    options = _reason_options(draft)
    variables = {
        "item": _returning_line(draft, progress.item).words(_currency(draft)),
        "reasons": [{"number": n, "name": o.label} for n, o in enumerate(options, start=1)],
        "lead": lead,
    }
    return Step(
        Reply("create_return.reason", variables, quick_replies=tuple(o.label for o in options))
    )


def _ask_outcome(turn: Turn, draft: Draft, lead: str = "") -> Step:
    progress = _progress(turn)
    progress.step = "outcome"
    options = _outcome_options(progress)
    variables = {
        "item": _returning_line(draft, progress.item).words(_currency(draft)),
        "options": [o.key for o in options],
        "lead": lead,
    }
    return Step(
        Reply("create_return.outcome", variables, quick_replies=tuple(o.label for o in options))
    )


def _variant_step_options(draft: Draft, progress: DraftProgress) -> list[Option]:
    """In-stock variants first (numbered as listed), then refund and store credit."""
    in_stock = [v for v in _variants(draft, progress.item) if v.is_available]
    return _variant_options(in_stock) + [o for o in OUTCOMES if o.key != "exchange"]


def _ask_variant(turn: Turn, draft: Draft, lead: str = "", sold_out: str = "") -> Step:
    progress = _progress(turn)
    progress.step = "variant"
    line = _returning_line(draft, progress.item)
    currency = _currency(draft)
    in_stock = [v for v in _variants(draft, progress.item) if v.is_available]
    options = _variant_step_options(draft, progress)
    variants = []
    for number, (variant, option) in enumerate(zip(in_stock, options, strict=False), start=1):
        more = (variant.price or 0) - line.price if variant.price is not None else 0
        variants.append(
            {
                "number": number,
                "variant": option.label,
                "more": minor_money(more, variant.currency or currency) if more > 0 else "",
            }
        )
    others = [
        {"number": len(in_stock) + n, "key": o.key}
        for n, o in enumerate(options[len(in_stock) :], start=1)
    ]
    variables = {
        "item": line.words(currency),
        "variants": variants,
        "others": others,
        "sold_out": sold_out,
        "lead": lead,
    }
    return Step(
        Reply("create_return.variant", variables, quick_replies=tuple(o.label for o in options))
    )


def _ask_method(turn: Turn, draft: Draft, lead: str = "") -> Step:
    progress = _progress(turn)
    progress.step = "method"
    options = _method_options(draft)
    types = {str(m.id): m.type or "" for m in draft.return_method_options}
    methods = [
        {"number": n, "name": o.label, "type": types.get(o.key, "")}
        for n, o in enumerate(options, start=1)
    ]
    return Step(
        Reply(
            "create_return.method",
            {"methods": methods, "lead": lead},
            quick_replies=tuple(o.label for o in options),
        )
    )


def _summary(draft: Draft, progress: DraftProgress) -> dict[str, Any]:
    """What the return will do, from the draft: each item and what the customer gets."""
    currency = _currency(draft)
    items = []
    for item in draft.returning_items:
        line = _line(draft, item.order_line_item_id)
        cart = next(
            (c for c in draft.cart_items if c.exchange_for_returning_item_id == item.id), None
        )
        exchange = item.return_type == "exchange"
        items.append(
            {
                **line.words(currency),
                "outcome": "exchange" if exchange else (progress.credit_type or "refund"),
                "exchange_for": (cart.variant_title or "") if exchange and cart else "",
            }
        )
    return {"order_name": progress.order_name, "items": items}


def _ask_confirm(turn: Turn, draft: Draft, fee: str, lead: str = "") -> Step:
    progress = _progress(turn)
    progress.step = "confirm"
    chosen = next((m for m in draft.return_method_options if m.id == progress.method), None)
    method = {
        "name": (chosen.name or "") if chosen else "",
        "type": (chosen.type or "") if chosen else "",
    }
    variables = {**_summary(draft, progress), "method": method, "fee": fee, "lead": lead}
    return Step(Reply("create_return.confirm", variables, quick_replies=CONFIRM_REPLIES))


# --- state -----------------------------------------------------------------------------


def _progress(turn: Turn) -> DraftProgress:
    progress = turn.state.draft
    assert progress is not None, "a draft step without a draft in progress"
    return progress


def _end(turn: Turn) -> None:
    """The conversation is done with the draft (created, cancelled, or gone)."""
    state = turn.state
    state.draft = None
    state.topic = ""
    state.awaiting = ""
    state.reset("not_understood")


def _handoff(turn: Turn, reply: Reply, reason: str) -> Step:
    """Hand over with the draft kept (its id is in the summary) for the agent to finish."""
    progress = _progress(turn)
    turn.state.awaiting = ""
    turn.state.note("found", f"draft return {progress.id} is left open for the agent")
    return Step(reply, handoff=f"{reason} (draft return {progress.id})")


def _failed(turn: Turn, result: DraftResult, what: str) -> Step:
    """Loop failed (or refused) a step: a person takes over the draft."""
    detail = result.error_code or f"HTTP {result.status}"
    messages = [str(e.get("message") or e.get("code") or "") for e in result.loop_errors]
    said = "; ".join(m for m in messages if m)
    turn.state.note("found", f"Loop failed to {what} ({detail}{': ' + said if said else ''})")
    return _handoff(
        turn, Reply("handoff", {"why": "upstream"}), f"Loop failed to {what} ({detail})"
    )


# --- entry points ----------------------------------------------------------------------


def upstream_status(result: DraftResult) -> int | None:
    """Loop's own HTTP status behind a failed step, when Loop answered."""
    details = (result.body.get("error") or {}).get("details") or {}
    status = details.get("upstreamStatus") if isinstance(details, dict) else None
    return status if isinstance(status, int) else None


def not_enabled(result: DraftResult) -> bool:
    """Creating returns is off: the merchant's switch, or Loop without the beta."""
    return result.error_code == "drafts_disabled" or upstream_status(result) in NOT_ENABLED


async def opened(turn: Turn, result: DraftResult, answer: str, lead: str = "") -> Step | None:
    """A draft was just created for the verified order: list what can be returned.

    None when Loop's draft shows none of the order's items (it cannot be built here):
    the draft is cancelled and the caller sends the return link."""
    draft = result.draft
    assert draft is not None and draft.id
    state = turn.state
    if not _lines(draft):
        cancelled = await _desk(turn).cancel(draft.id, actor=turn.actor)
        state.note("found", f"Loop's draft return {draft.id} shows no items of the order")
        if cancelled.ok:
            state.note("did", f"cancelled draft return {draft.id}: no items to choose from")
        return None
    state.topic = "start_return"
    state.reset("verification")
    state.reset("not_understood")
    state.draft = DraftProgress(id=draft.id, order_name=state.order_name, answer=answer)
    state.note("did", f"opened draft return {draft.id} for order {state.order_name}")
    for item in _refused(draft):
        state.note("found", f"{item['title']} {item['variant']} is not returnable ({item['code']})")
    if not _addable(draft):
        return await _nothing_eligible(turn, draft)
    return _ask_items(turn, draft, lead)


async def _nothing_eligible(turn: Turn, draft: Draft) -> Step:
    """No item can be returned: say why, and close the draft (it can do nothing)."""
    progress = _progress(turn)
    refused = _refused(draft)
    result = await _desk(turn).cancel(progress.id, actor=turn.actor)
    if result.ok:
        turn.state.note("did", f"cancelled draft return {progress.id}: nothing is returnable")
    _end(turn)
    window = any(r["code"] == "outside-return-window" for r in refused)
    replies = ("I missed the return window",) * window + ("Talk to an agent",)
    return Step(
        Reply(
            "create_return.none_eligible",
            {"order_name": progress.order_name, "refused": refused, "window": window},
            quick_replies=replies,
        )
    )


def _desk(turn: Turn) -> DraftDesk:
    desk = turn.services.drafts
    assert desk is not None, "the draft flow runs only with a DraftDesk"
    return desk


def offered_answer(turn: Turn) -> bool:
    """The message answers the draft question asked (a choice offered, or a word such
    as undo or cancel): the engine keeps it in this flow whatever the classifier says."""
    if control(turn.text) is not None:
        return True
    options = [Option(label, label) for label in turn.state.offered]
    return bool(pick_many(turn.text, options))


async def answer(turn: Turn) -> Step:
    """The customer's answer to the draft question pending."""
    state, progress = turn.state, _progress(turn)
    desk = _desk(turn)
    word = control(turn.text)
    if turn.entities.order_name and not same_order(turn.entities.order_name, progress.order_name):
        # Another order: this draft is abandoned, the new order starts from its proof.
        await _cancel_quietly(turn, f"the customer turned to order {turn.entities.order_name}")
        from loopdesk.guides.flows.start_return import start_return

        return await start_return(turn)
    if word == "cancel":
        return await abandon(turn, "the customer abandoned it")
    fresh = await desk.get(progress.id, actor=turn.actor)
    if not fresh.ok or fresh.draft is None:
        return _failed(turn, fresh, "read the draft return")
    draft: Draft = fresh.draft
    if (draft.state or "") in TERMINAL:
        state.note("found", f"draft return {progress.id} is {draft.state}")
        _end(turn)
        return Step(
            Reply(
                "create_return.closed",
                {"order_name": progress.order_name, "state": draft.state},
                quick_replies=("Start a return",),
            )
        )
    if word == "restart":
        return await _restart(turn)
    if word == "undo" or (word == "no" and progress.step == "confirm"):
        state.reset("not_understood")
        return await _undo(turn, draft)
    handler = {
        "items": _items,
        "reason": _reason,
        "outcome": _outcome,
        "variant": _variant,
        "method": _method,
        "confirm": _confirm,
    }[progress.step]
    step = await handler(turn, draft)
    if step is not None:
        if step.reply.vars.get("lead") != "not_understood":
            state.reset("not_understood")
        return step
    # Not an answer to the question.
    if turn.intent.intent == "agent" and not turn.intent.clarify:
        state.note("did", "the customer asked for an agent")
        return _handoff(turn, Reply("handoff", {"why": "asked"}), "the customer asked for an agent")
    if state.bump("not_understood") >= MAX_NOT_UNDERSTOOD:
        return _handoff(
            turn,
            Reply("handoff", {"why": "not_understood"}),
            "the guide did not understand the customer twice",
        )
    return await _reask(turn, draft, "not_understood")


async def _reask(turn: Turn, draft: Draft, lead: str) -> Step:
    progress = _progress(turn)
    if progress.step == "items":
        return _ask_items(turn, draft, lead)
    if progress.step == "reason":
        return _ask_reason(turn, draft, lead)
    if progress.step == "outcome":
        return _ask_outcome(turn, draft, lead)
    if progress.step == "variant":
        return _ask_variant(turn, draft, lead)
    if progress.step == "method":
        return _ask_method(turn, draft, lead)
    return _ask_confirm(turn, draft, await _fee(turn), lead)


# --- each step ---------------------------------------------------------------------------


async def _items(turn: Turn, draft: Draft) -> Step | None:
    progress = _progress(turn)
    if control(turn.text) == "done" and progress.settled:
        return await _finalize(turn, draft)
    chosen = pick_many(turn.text, _item_options(_addable(draft)))
    if not chosen:
        return None
    progress.queue = [o.key for o in chosen]
    turn.state.note("did", "chose " + ", ".join(o.label for o in chosen))
    return await _next_item(turn, draft)


async def _next_item(turn: Turn, draft: Draft, lead: str = "") -> Step:
    """The next chosen item goes into the draft and is asked about; none left: finalize.
    `lead` is said first in the next question."""
    progress = _progress(turn)
    if progress.item:
        progress.settled.append(progress.item)
        progress.item = ""
    if not progress.queue:
        return await _finalize(turn, draft, lead)
    line_id = progress.queue.pop(0)
    result = await _desk(turn).add_item(progress.id, line_id, actor=turn.actor)
    if not result.ok or result.draft is None:
        return _failed(turn, result, "add an item to the draft return")
    added = next((i for i in result.draft.returning_items if i.order_line_item_id == line_id), None)
    if added is None:
        return _failed(turn, result, "add an item to the draft return")
    progress.item = added.id
    return _ask_reason(turn, result.draft, lead)


async def _reason(turn: Turn, draft: Draft) -> Step | None:
    progress = _progress(turn)
    chosen = pick_one(turn.text, _reason_options(draft))
    if chosen is None:
        return None
    result = await _desk(turn).set_reason(progress.id, progress.item, chosen.key, actor=turn.actor)
    if not result.ok or result.draft is None:
        return _failed(turn, result, "set the return reason")
    line = _returning_line(draft, progress.item)
    turn.state.note("did", f"reason for {line.label}: {chosen.label}")
    return _ask_outcome(turn, result.draft)


async def _outcome(turn: Turn, draft: Draft) -> Step | None:
    progress = _progress(turn)
    chosen = pick_one(turn.text, _outcome_options(progress))
    if chosen is None:
        return None
    return await _choose_outcome(turn, chosen.key)


async def _choose_outcome(turn: Turn, outcome: str) -> Step:
    progress, desk = _progress(turn), _desk(turn)
    return_type = "exchange" if outcome == "exchange" else "credit"
    result = await desk.set_type(progress.id, progress.item, return_type, actor=turn.actor)
    if not result.ok or result.draft is None:
        return _failed(turn, result, "set the return type")
    draft: Draft = result.draft
    line = _returning_line(draft, progress.item)
    if outcome != "exchange":
        # Loop pays a whole return back one way: the latest choice holds for every item.
        mixed = progress.credit_type not in ("", outcome) and any(
            i.return_type == "credit" and i.id != progress.item for i in draft.returning_items
        )
        progress.credit_type = outcome
        kind = "refund" if outcome == "refund" else "store credit"
        turn.state.note("did", f"{line.label}: {kind}")
        return await _next_item(turn, draft, f"all_{outcome}" if mixed else "")
    if any(v.is_available for v in _variants(draft, progress.item)):
        return _ask_variant(turn, draft)
    # Nothing else in stock: no exchange, the item goes back as credit until chosen.
    back = await desk.set_type(progress.id, progress.item, "credit", actor=turn.actor)
    if not back.ok or back.draft is None:
        return _failed(turn, back, "set the return type")
    progress.no_exchange.append(progress.item)
    turn.state.note("found", f"no other variant of {line.label} is in stock for an exchange")
    return _ask_outcome(turn, back.draft, "no_stock")


async def _variant(turn: Turn, draft: Draft) -> Step | None:
    progress = _progress(turn)
    options = _variant_step_options(draft, progress)
    chosen = pick_one(turn.text, options)
    if chosen is None:
        catalog = _variants(draft, progress.item)
        sold = [v for v in catalog if not v.is_available]
        bought = Option("", _returning_line(draft, progress.item).variant)
        named = pick_exact(turn.text, _variant_options(sold), [*_variant_options(catalog), bought])
        if named is None:
            return None
        turn.state.note("found", f"{named.label} is sold out")
        return _ask_variant(turn, draft, "sold_out", sold_out=named.label)
    if chosen.key in ("refund", "gift"):
        return await _choose_outcome(turn, chosen.key)
    result = await _desk(turn).add_exchange(
        progress.id, progress.item, chosen.key, actor=turn.actor
    )
    if not result.ok or result.draft is None:
        if result.status == 422:  # sold out meanwhile
            turn.state.note("found", f"{chosen.label} could not be reserved for the exchange")
            fresh = await _desk(turn).get(progress.id, actor=turn.actor)
            if fresh.ok and fresh.draft is not None:
                return _ask_variant(turn, fresh.draft, "sold_out", sold_out=chosen.label)
        return _failed(turn, result, "add the exchange item")
    line = _returning_line(draft, progress.item)
    turn.state.note("did", f"{line.label}: exchange for {chosen.label}")
    return await _next_item(turn, result.draft)


async def _finalize(turn: Turn, draft: Draft, lead: str = "") -> Step:
    """The items are settled: Loop fixes them, then says what is due."""
    progress, desk = _progress(turn), _desk(turn)
    progress.step = "method"
    result = await desk.finalize(progress.id, actor=turn.actor)
    if not result.ok or result.draft is None:
        return _failed(turn, result, "finalize the items")
    draft = result.draft
    totals = await desk.totals(progress.id, actor=turn.actor)
    if not totals.ok or totals.totals is None:
        return _failed(turn, totals, "read the totals")
    worth = totals.totals
    due = worth.amount_due.amount if worth.amount_due else 0
    if not worth.is_difference_covered:
        currency = (worth.amount_due.currency if worth.amount_due else None) or _currency(draft)
        amount = minor_money(due, currency)
        turn.state.note("found", f"{amount} is due and not covered by the items returned")
        return _handoff(
            turn,
            Reply(
                "create_return.amount_due",
                {"order_name": progress.order_name, "amount": amount if due > 0 else ""},
            ),
            f"the exchange leaves {amount} to pay",
        )
    credit = any(i.return_type != "exchange" for i in draft.returning_items)
    if credit and allows(draft, "set-credit-type"):
        kind = progress.credit_type or "refund"
        chosen = await desk.set_credit_type(progress.id, kind, actor=turn.actor)
        if not chosen.ok or chosen.draft is None:
            return _failed(turn, chosen, "set the credit type")
        draft = chosen.draft
    methods = _method_options(draft)
    if len(methods) == 1:
        return await _select_method(turn, methods[0], lead)
    return _ask_method(turn, draft, lead)


async def _method(turn: Turn, draft: Draft) -> Step | None:
    chosen = pick_one(turn.text, _method_options(draft))
    if chosen is None:
        return None
    return await _select_method(turn, chosen)


async def _select_method(turn: Turn, chosen: Option, lead: str = "") -> Step:
    progress = _progress(turn)
    result = await _desk(turn).select_method(progress.id, chosen.key, actor=turn.actor)
    if not result.ok or result.draft is None:
        return _failed(turn, result, "select the return method")
    progress.method = chosen.key
    turn.state.note("did", f"return method: {chosen.label}")
    return _ask_confirm(turn, result.draft, await _fee(turn), lead)


async def _fee(turn: Turn) -> str:
    """The exchange fee the return costs, in words ("" when none or unknown)."""
    progress = _progress(turn)
    totals = await _desk(turn).totals(progress.id, actor=turn.actor)
    fee = totals.totals.exchange_fee if totals.ok and totals.totals else None
    return minor_money(fee.amount, fee.currency) if fee and fee.amount > 0 else ""


async def _confirm(turn: Turn, draft: Draft) -> Step | None:
    if control(turn.text) != "yes":
        return None
    return await _submit(turn)


async def _submit(turn: Turn) -> Step:
    progress, state = _progress(turn), turn.state
    result = await _desk(turn).submit(progress.id, actor=turn.actor)
    if result.ok:
        return_id = result.return_id or (result.draft.return_id if result.draft else "") or "?"
        # Only Loop's status page is ever linked; none known: the reply says email.
        url = result.status_page_url or ""
        url = url if url.startswith("https://") else ""
        state.note("did", f"created return {return_id} for order {progress.order_name}")
        if url:
            state.note("links", url)
        order_name = progress.order_name
        _end(turn)
        return Step(
            Reply(
                "create_return.submitted",
                {"order_name": order_name, "url": url},
                links=(Link(url, "Your return"),) if url else (),
            )
        )
    if result.outcome_unknown:
        # Loop may have created it: never say so, never say not.
        state.note("found", f"the submit of draft return {progress.id} has no known outcome")
        return _handoff(
            turn,
            Reply("create_return.submit_unknown", {"order_name": progress.order_name}),
            "Loop did not confirm the submit: the return may or may not exist",
        )
    codes = [str(e.get("code") or "") for e in result.loop_errors]
    code = next((c for c in codes if c), "")
    if not code and result.error_code in UNAVAILABLE:
        # Loop failed and the reads after it show no return: nothing was created.
        code = "unavailable"
    state.note("found", f"Loop refused the submit ({code or f'HTTP {result.status}'})")
    return _handoff(
        turn,
        Reply("create_return.submit_refused", {"order_name": progress.order_name, "code": code}),
        f"Loop refused to submit the return ({code or f'HTTP {result.status}'})",
    )


async def _undo(turn: Turn, draft: Draft) -> Step:
    """Reopen the last step."""
    progress = _progress(turn)
    step = progress.step
    if step == "items":
        if not progress.settled:
            return _ask_items(turn, draft, "nothing_to_undo")
        progress.item = progress.settled.pop()
        return _ask_outcome(turn, draft, "undone")
    if step == "reason":
        result = await _desk(turn).remove_item(progress.id, progress.item, actor=turn.actor)
        if not result.ok or result.draft is None:
            return _failed(turn, result, "remove the item")
        turn.state.note("did", f"took {_returning_line(draft, progress.item).label} out again")
        progress.item = ""
        progress.queue = []
        return _ask_items(turn, result.draft, "undone")
    if step == "outcome":
        return _ask_reason(turn, draft, "undone")
    if step == "variant":
        return _ask_outcome(turn, draft, "undone")
    # After finalize Loop holds the items fixed: only the method can change.
    if step == "confirm" and len(_method_options(draft)) > 1:
        return _ask_method(turn, draft, "undone")
    if step == "confirm":
        return _ask_confirm(turn, draft, await _fee(turn), "locked")
    return _ask_method(turn, draft, "locked")


async def _cancel_quietly(turn: Turn, why: str) -> bool:
    progress = _progress(turn)
    result = await _desk(turn).cancel(progress.id, actor=turn.actor)
    if result.ok:
        turn.state.note("did", f"cancelled draft return {progress.id} ({why})")
    else:
        turn.state.note("found", f"draft return {progress.id} could not be cancelled")
    _end(turn)
    return bool(result.ok)


async def abandon(turn: Turn, why: str) -> Step:
    """The customer stops: the draft is cancelled, nothing is created."""
    progress = _progress(turn)
    result = await _desk(turn).cancel(progress.id, actor=turn.actor)
    order_name = progress.order_name
    ended = result.draft.state if result.draft else None
    if not result.ok and ended in TERMINAL:
        # Nothing to cancel any more (it expired, or a person finished it): say so.
        turn.state.note("found", f"draft return {progress.id} is {ended}")
        _end(turn)
        return Step(
            Reply(
                "create_return.closed",
                {"order_name": order_name, "state": ended},
                quick_replies=("Start a return",),
            )
        )
    if not result.ok:
        return _failed(turn, result, "cancel the draft return")
    turn.state.note("did", f"cancelled draft return {progress.id} ({why})")
    _end(turn)
    return Step(
        Reply(
            "create_return.cancelled",
            {"order_name": order_name},
            quick_replies=("Start a return", "Where's my return?"),
        )
    )


async def _restart(turn: Turn) -> Step:
    """A new draft for the same order: the old one is cancelled."""
    progress = _progress(turn)
    order_name, given = progress.order_name, progress.answer
    await _cancel_quietly(turn, "the customer started over")
    turn.state.order_name = order_name
    result = await _desk(turn).start(
        order_name, given, actor=turn.actor, conversation_id=turn.conversation_id
    )
    if not result.ok or result.draft is None:
        turn.state.note("found", f"a new draft return could not be opened ({result.error_code})")
        return Step(
            Reply("handoff", {"why": "upstream"}),
            handoff=f"a new draft return for {order_name} could not be opened",
        )
    step = await opened(turn, result, given, "restarted")
    if step is None:
        from loopdesk.guides.flows.start_return import send_link

        return await send_link(turn)
    return step


async def cancel_for_switch(turn: Turn) -> None:
    """The customer moved to another topic: the draft is not left open behind them."""
    if turn.state.draft is not None:
        await _cancel_quietly(turn, "the customer changed topic")
