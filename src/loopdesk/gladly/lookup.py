"""Gladly's customer Lookup Adaptor: the request read, the customer looked up within a
time budget, the answer Gladly reads (`reference/gladly.md` §1).

- **Request.** `{"lookupLevel": "BASIC"|"DETAILED", "query": {...}, "uniqueMatchRequired"}`.
  Every query value may be a string or a list of strings (an agent's search sends
  `{"email": "a@b.c"}`, auto-linking `{"emails": [...]}`). The profile's custom
  attributes come flat in `query` (Gladly's own integration) or under
  `query.customAttributes` (an App Platform app); both are read, for the `vip` fact.
  Customers are found by email only: Loop knows them by email.
- **Answer.** `{"results": [...]}`: none when the addresses are unknown to Loop (BASIC)
  or missing, else one result: `externalCustomerId`, `name`, `emails`, the routing facts
  and decision as flat string `customAttributes` (`ATTRIBUTES`, the README's table), and
  on DETAILED the orders as ORDER transactions and the returns as GENERIC ones.
- **In time.** Gladly fails every lookup when one adaptor is slow, so Loop gets
  `budget_s`; past it (or on any failure) the stored view answers, with
  `loopStale: "true"` and `loopAsOf`. The fetch that ran out of time goes on in the
  background and fills the store for the next lookup.

`externalCustomerId` is `loopdesk-` and the first 24 hex digits of the SHA-256 of the
customer's alphabetically first address (trimmed, lower-cased): the same for any order
of the same addresses, and never the address itself. A request that carries an
`externalCustomerId` (the one Gladly linked the profile with) gets it back unchanged, so
a link survives a change of the profile's addresses.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

import structlog
from pydantic import BaseModel, Field

from loopdesk.customers.profile import email_problem
from loopdesk.customers.service import CustomerService
from loopdesk.customers.view import CustomerView
from loopdesk.domain.facts import (
    FACTS,
    FINAL_SHIPMENT_STATUSES,
    SHIPMENT_PROBLEM_STATUSES,
    Customer,
    FactValue,
    facts,
)
from loopdesk.domain.models import LoopReturn, Order
from loopdesk.domain.shipments import order_key, shipment_status
from loopdesk.domain.timeline import ProcessingTimes, Stage, estimate, is_open, return_stage
from loopdesk.errors import InvalidInput
from loopdesk.routing.decide import Decision, decide
from loopdesk.routing.service import RoutingConfig

log = structlog.get_logger(__name__)

Level = Literal["BASIC", "DETAILED"]
LEVELS: tuple[Level, ...] = ("BASIC", "DETAILED")
ID_PREFIX = "loopdesk-"
MAX_VALUES = 100  # values read per query key; a profile has far fewer
MAX_TEXT = 500
MAX_ID_LENGTH = 255
EMAIL_KEYS = ("emails", "email")
# Query keys that are the profile's own fields, not custom attributes.
PROFILE_KEYS = frozenset(
    {"emails", "email", "phones", "phone", "id", "name", "address", "externalCustomerId"}
)
NESTED_ATTRIBUTES = "customAttributes"


# --- the request ---------------------------------------------------------------------


@dataclass(frozen=True)
class LookupQuery:
    """One lookup request, read."""

    level: Level
    emails: tuple[str, ...]  # usable addresses, in the order sent, each once (any case)
    name: str | None = None
    external_id: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)


def parse_lookup(body: Any) -> LookupQuery:
    """The request Gladly sent (decoded JSON); `InvalidInput` naming what is wrong.

    Lenient where Gladly's senders differ: a value may be a string or a list of strings;
    addresses that are not addresses are skipped (an agent may type anything in a
    search); the level's case does not matter.
    """
    if not isinstance(body, dict):
        raise InvalidInput("the body is a JSON object", details={"field": ""})
    level = body.get("lookupLevel")
    if not isinstance(level, str) or level.strip().upper() not in LEVELS:
        raise InvalidInput("lookupLevel is BASIC or DETAILED", details={"field": "lookupLevel"})
    query = body.get("query")
    if not isinstance(query, dict):
        raise InvalidInput("query is an object", details={"field": "query"})
    unique = body.get("uniqueMatchRequired", False)
    if not isinstance(unique, bool) and unique is not None:
        raise InvalidInput(
            "uniqueMatchRequired is true or false", details={"field": "uniqueMatchRequired"}
        )
    emails: list[str] = []
    seen: set[str] = set()
    for key in EMAIL_KEYS:
        for value in _strings(query.get(key), f"query.{key}"):
            email = value.strip()
            if email.lower() in seen or email_problem(email) is not None:
                continue
            seen.add(email.lower())
            emails.append(email)
    for key in ("name", "id", "externalCustomerId"):
        _strings(query.get(key), f"query.{key}")  # a string or a list of strings
    return LookupQuery(
        level="BASIC" if level.strip().upper() == "BASIC" else "DETAILED",
        emails=tuple(emails),
        name=_text(_first(query.get("name")), MAX_TEXT),
        external_id=_identifier(_first(query.get("externalCustomerId"))),
        attributes=_attributes(query),
    )


def _strings(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value[:MAX_VALUES]
    raise InvalidInput(f"{name} is a string or a list of strings", details={"field": name})


def _first(value: Any) -> str | None:
    if isinstance(value, list):
        return value[0] if value else None
    return value if isinstance(value, str) else None


def _text(value: str | None, limit: int) -> str | None:
    """Text to send back: no control characters or lone surrogates (no JSON encoder
    writes those to UTF-8), at most `limit` characters; None when nothing is left."""
    if value is None:
        return None
    kept = "".join(c for c in value if unicodedata.category(c) not in ("Cc", "Cs")).strip()
    return kept[:limit] or None


def _identifier(value: str | None) -> str | None:
    """An id Gladly sent, when it is one we can send back as it was."""
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > MAX_ID_LENGTH or _text(value, MAX_ID_LENGTH) != value:
        return None
    return value


def _attributes(query: Mapping[str, Any]) -> dict[str, Any]:
    """The profile's custom attributes: flat keys, then `customAttributes` over them.
    loopdesk's own attributes are left out: the facts never read what they wrote."""
    attributes = {
        k: v for k, v in query.items() if k not in PROFILE_KEYS and k != NESTED_ATTRIBUTES
    }
    nested = query.get(NESTED_ATTRIBUTES)
    if isinstance(nested, dict):
        attributes.update(nested)
    return {k: v for k, v in attributes.items() if k not in ATTRIBUTE_NAMES}


def external_customer_id(emails: Iterable[str]) -> str:
    """The customer's id for Gladly: stable for a set of addresses in any order (see the
    module's docstring). ValueError without an address."""
    first = min(e.strip().lower() for e in emails)
    return ID_PREFIX + hashlib.sha256(first.encode()).hexdigest()[:24]


# --- the custom attributes -----------------------------------------------------------


@dataclass(frozen=True)
class AttributeDef:
    """One custom attribute of a result, as the README's table shows it."""

    name: str
    values: str
    meaning: str


ATTRIBUTE_PREFIX = "loop"
# Where the plain name (prefix + the fact's name in camel case) reads badly.
RENAMED = {"open_return_count": "loopOpenReturns"}
_VALUES = {
    bool: '`"true"` or `"false"`',
    int: 'a whole number as text, e.g. `"9"`',
    str: "text",
}


def attribute_name(fact_name: str) -> str:
    """`refund_pending_days` is `loopRefundPendingDays`."""
    camel = "".join(part[:1].upper() + part[1:] for part in fact_name.split("_"))
    return RENAMED.get(fact_name, ATTRIBUTE_PREFIX + camel)


def _sentence(text: str) -> str:
    """A definition's first sentence (the README's fact table has the rest)."""
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


FACT_ATTRIBUTES: dict[str, str] = {f.name: attribute_name(f.name) for f in FACTS}
DECISION_ATTRIBUTES = (
    AttributeDef("loopQueue", "text", 'the routing decision\'s queue (see "Routing")'),
    AttributeDef("loopPriority", _VALUES[int], "the decision's priority, 0 to 1000, higher first"),
    AttributeDef("loopRule", "text", 'the rule that decided, or `"(none)"`'),
    AttributeDef("loopTags", "text", "the decision's tags, comma-separated"),
)
META_ATTRIBUTES = (
    AttributeDef(
        "loopStale",
        _VALUES[bool],
        '`"true"` when Loop did not answer in time (or failed) and the values come from '
        "what loopdesk had stored",
    ),
    AttributeDef(
        "loopAsOf",
        "ISO 8601 time, or empty",
        "when the values were last fetched from Loop; empty when never",
    ),
)
ATTRIBUTES: tuple[AttributeDef, ...] = (
    *(
        AttributeDef(
            FACT_ATTRIBUTES[f.name], _VALUES[f.type], f"`{f.name}`: {_sentence(f.definition)}"
        )
        for f in FACTS
    ),
    *DECISION_ATTRIBUTES,
    *META_ATTRIBUTES,
)
ATTRIBUTE_NAMES = frozenset(a.name for a in ATTRIBUTES)


def attribute_text(value: FactValue) -> str:
    """Gladly's attributes are strings: booleans `"true"`/`"false"`, numbers in digits."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def custom_attributes(
    customer_facts: Mapping[str, FactValue] | None,
    decision: Decision | None,
    *,
    stale: bool,
    as_of: str | None,
) -> dict[str, str]:
    """The result's `customAttributes`. Without facts (nothing is known: Loop did not
    answer and nothing is stored) only `loopStale` and `loopAsOf` are sent, so Gladly
    keeps the values it had (an attribute left out is not cleared)."""
    values: dict[str, str] = {}
    if customer_facts is not None:
        for name, attribute in FACT_ATTRIBUTES.items():
            values[attribute] = attribute_text(customer_facts[name])
    if decision is not None:
        values["loopQueue"] = decision.outcome.queue
        values["loopPriority"] = str(decision.outcome.priority)
        values["loopRule"] = decision.rule
        values["loopTags"] = ",".join(decision.outcome.tags)
    values["loopStale"] = attribute_text(stale)
    values["loopAsOf"] = as_of or ""
    return values


def attribute_table_markdown() -> str:
    """The README's table of custom attributes."""
    lines = ["| attribute | value | what it holds |", "| --- | --- | --- |"]
    lines += [f"| `{a.name}` | {a.values} | {a.meaning} |" for a in ATTRIBUTES]
    return "\n".join(lines) + "\n"


# --- the answer ----------------------------------------------------------------------


class EmailOut(BaseModel):
    original: str


class ProductOut(BaseModel):
    id: str
    name: str
    sku: str | None = None
    status: str
    quantity: int = 1
    unitPrice: str | None = Field(default=None, description="With the currency, e.g. $29.99")


class FulfillmentOut(BaseModel):
    trackingNumber: str
    carrier: str
    status: str
    trackingUrl: str | None = None


class OrderTransaction(BaseModel):
    """An order: from Loop Order Tracking (its shipments) and from the customer's returns
    (the items returned). Loop's data has no order total or placement time, so
    `orderTotal` and `createdAt` are sent only when known."""

    type: Literal["ORDER"] = "ORDER"
    orderNumber: str
    orderStatus: str
    createdAt: str | None = None
    orderTotal: str | None = None
    currencyCode: str | None = None
    orderLink: str | None = None
    note: str | None = None
    products: list[ProductOut]
    fulfillments: list[FulfillmentOut]


class ReturnTransaction(BaseModel):
    """A return, as a GENERIC transaction."""

    type: Literal["GENERIC"] = "GENERIC"
    name: str
    returnId: str
    orderNumber: str
    createdAt: str
    updatedAt: str
    status: str
    stage: str
    outcome: str
    returnTotal: str
    refund: str
    currencyCode: str
    carrier: str
    trackingNumber: str
    labelStatus: str
    statusPageUrl: str
    expectedBy: str | None = Field(
        default=None, description="When the refund, credit or exchange should land"
    )
    late: bool = False


Transaction = Annotated[OrderTransaction | ReturnTransaction, Field(discriminator="type")]


class LookupResult(BaseModel):
    externalCustomerId: str
    name: str | None = None
    emails: list[EmailOut]
    customAttributes: dict[str, str]
    transactions: list[Transaction] | None = Field(default=None, description="DETAILED only")


class LookupAnswer(BaseModel):
    """What Gladly reads: `{"results": [...]}`, none or one."""

    results: list[LookupResult]


STAGE_WORDS: dict[Stage, str] = {
    Stage.LABEL_UNUSED: "label not used yet",
    Stage.ON_ITS_WAY: "on its way back",
    Stage.AT_WAREHOUSE: "at the warehouse",
    Stage.PROCESSING: "with the merchant",
    Stage.DONE_REFUND: "refunded",
    Stage.DONE_CREDIT: "credited",
    Stage.DONE_EXCHANGE: "exchanged",
    Stage.CANCELLED: "cancelled",
    Stage.EXPIRED: "expired",
    Stage.IN_REVIEW: "in review",
}
CURRENCY_SYMBOLS = {
    "USD": "$",
    "CAD": "CA$",
    "AUD": "A$",
    "NZD": "NZ$",
    "EUR": "€",
    "GBP": "£",
    "JPY": "¥",
}


def money_text(amount: str, currency: str) -> str:
    """`29.99` in USD is `$29.99`; a currency without a symbol here: `29.99 SEK`."""
    try:
        value = Decimal(amount)
    except InvalidOperation:
        return amount
    code = currency.strip().upper()
    sign, digits = ("-" if value < 0 else ""), f"{abs(value):.2f}"
    symbol = CURRENCY_SYMBOLS.get(code)
    if symbol:
        return f"{sign}{symbol}{digits}"
    return f"{sign}{digits} {code}".strip()


def order_status(order: Order | None, returns: list[LoopReturn]) -> str:
    """In this order of precedence: `Return open` (a return is open or in review),
    `Returned` (a return is closed), `Shipment problem` (stalled, error, failed delivery,
    sent back), `Delivered` (every shipment final), `In transit`, `Unfulfilled` (Order
    Tracking knows no shipment yet), else `Return cancelled`/`Return expired`."""
    if any(is_open(r) for r in returns):
        return "Return open"
    if any(r.state.strip().lower() == "closed" for r in returns):
        return "Returned"
    statuses = [shipment_status(s.status) for s in order.shipments] if order else []
    if any(s in SHIPMENT_PROBLEM_STATUSES for s in statuses):
        return "Shipment problem"
    if statuses and all(s in FINAL_SHIPMENT_STATUSES for s in statuses):
        return "Delivered"
    if statuses:
        return "In transit"
    if order is not None or not returns:
        return "Unfulfilled"
    return f"Return {returns[0].state.strip().lower() or 'closed'}"


def order_transactions(view: CustomerView) -> list[OrderTransaction]:
    """One ORDER per order: Order Tracking's first, in its order, then those only the
    returns name (newest return first). An order's returns give its currency, its
    products (the items returned, with their stage) and a note."""
    orders: dict[str, Order | None] = {}
    names: dict[str, str] = {}
    by_order: dict[str, list[LoopReturn]] = {}
    for order in view.orders:
        key = order_key(order.name)
        if key and key not in orders:
            orders[key], names[key] = order, order.name
    for ret in view.returns:
        key = order_key(ret.order.name)
        if not key:
            continue
        if key not in orders:
            orders[key], names[key] = None, ret.order.name
        by_order.setdefault(key, []).append(ret)
    return [_order(names[k], orders[k], by_order.get(k, [])) for k in orders]


def _order(name: str, order: Order | None, returns: list[LoopReturn]) -> OrderTransaction:
    currency = next((r.currency for r in returns if r.currency), None)
    products = [
        ProductOut(
            id=item.id,
            name=item.title or item.sku or item.id,
            sku=item.sku or None,
            status=f"return {STAGE_WORDS[return_stage(ret)]}",
            unitPrice=money_text(_positive(item.cost.price), ret.currency),
        )
        for ret in returns
        for item in ret.return_.items
    ]
    notes = [
        f"Return {r.id}: {STAGE_WORDS[return_stage(r)]} ({r.outcome or 'refund'})" for r in returns
    ]
    return OrderTransaction(
        orderNumber=name,
        orderStatus=order_status(order, returns),
        currencyCode=currency,
        orderLink=order.shipmentUrl if order else None,
        note="; ".join(notes) or None,
        products=products,
        fulfillments=[
            FulfillmentOut(
                trackingNumber=s.trackingCode,
                carrier=s.carrierDisplayName,
                status=s.status,
                trackingUrl=order.shipmentUrl,
            )
            for s in order.shipments
        ]
        if order
        else [],
    )


def _positive(amount: str) -> str:
    """Loop lists a returned item's price as negative (money going back)."""
    return amount.removeprefix("-")


def return_transactions(
    view: CustomerView, processing: ProcessingTimes, now: datetime
) -> list[ReturnTransaction]:
    """One GENERIC transaction per return, newest first, with when its refund, credit
    or exchange should land (`## When the refund lands`)."""
    items = []
    for ret in view.returns:
        landing = estimate(ret, processing, now)
        items.append(
            ReturnTransaction(
                name=f"Return for {ret.order.name}" if ret.order.name else f"Return {ret.id}",
                returnId=ret.id,
                orderNumber=ret.order.name,
                createdAt=ret.createdAt,
                updatedAt=ret.updatedAt,
                status=ret.state,
                stage=STAGE_WORDS[return_stage(ret)],
                outcome=ret.outcome,
                returnTotal=money_text(ret.return_.total, ret.currency),
                refund=money_text(ret.costBreakdown.refund, ret.currency),
                currencyCode=ret.currency,
                carrier=ret.shipping.carrier,
                trackingNumber=ret.shipping.trackingNumber,
                labelStatus=ret.shipping.labelStatus,
                statusPageUrl=ret.shipping.statusPageUrl or ret.url,
                expectedBy=landing.lands_on.isoformat() if landing else None,
                late=landing.late if landing else False,
            )
        )
    return items


# --- one lookup ----------------------------------------------------------------------


@dataclass(frozen=True)
class LookupDesk:
    """What a lookup needs, built once: the customer service, the routing rules and
    the facts' policy, the refund processing times, and Loop's time budget."""

    customers: CustomerService
    routing: RoutingConfig
    processing: ProcessingTimes
    budget_s: float

    async def answer(self, query: LookupQuery, *, now: datetime | None = None) -> LookupAnswer:
        """The answer to one lookup; see the module's docstring."""
        started = time.monotonic()
        if not query.emails:
            return LookupAnswer(results=[])
        view = await self.view(list(query.emails))
        moment = now or datetime.now(UTC)
        unknown = view.meta.stale and view.meta.asOf is None and not (view.returns or view.orders)
        if query.level == "BASIC" and (unknown or not (view.returns or view.orders)):
            results: list[LookupResult] = []
        else:
            results = [self._result(query, view, moment, known=not unknown)]
        log.info(
            "gladly.lookup",
            lookup_level=query.level,
            results=len(results),
            source=view.meta.source,
            stale=view.meta.stale,
            ms=round((time.monotonic() - started) * 1000, 1),
        )
        return LookupAnswer(results=results)

    async def view(self, emails: list[str]) -> CustomerView:
        """The customer's view from the lookup when it answers within the budget, else
        (or when it fails) what the store holds, marked stale."""
        try:
            async with asyncio.timeout(self.budget_s):
                return await self.customers.lookup(emails)
        except TimeoutError:
            log.warning("gladly.lookup_from_store", reason="budget", budget_s=self.budget_s)
        except Exception as exc:  # a lookup must answer: the store stands in
            log.warning("gladly.lookup_from_store", reason=type(exc).__name__)
        return await self.customers.stored(emails)

    def _result(
        self, query: LookupQuery, view: CustomerView, now: datetime, *, known: bool
    ) -> LookupResult:
        customer_facts = decision = None
        if known:
            customer_facts = facts(
                view.returns,
                view.orders,
                now,
                self.routing.policy,
                customer=Customer(emails=tuple(view.meta.emails), attributes=query.attributes),
                exceptions_granted=view.exceptions_granted,
            )
            decision = decide(self.routing.rules, customer_facts)
        transactions: list[OrderTransaction | ReturnTransaction] | None = None
        if query.level == "DETAILED":
            transactions = [
                *order_transactions(view),
                *return_transactions(view, self.processing, now),
            ]
        return LookupResult(
            externalCustomerId=query.external_id or external_customer_id(query.emails),
            name=query.name,
            emails=[EmailOut(original=e) for e in view.meta.emails],
            customAttributes=custom_attributes(
                customer_facts, decision, stale=view.meta.stale, as_of=view.meta.asOf
            ),
            transactions=transactions,
        )
