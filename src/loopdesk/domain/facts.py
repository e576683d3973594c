"""Routing facts about one customer, computed from their normalized returns and orders.

Each fact is defined once, below, by a function decorated with `@fact`: its name, its
type, its definition (the docstring), the Loop fields it reads and what happens when
they are missing. `facts()` evaluates all of them at a given moment; `FACTS` lists the
definitions in order, and the README's fact table is generated from it
(`fact_table_markdown`), so the documentation cannot drift from the code.

Facts are never null: a fact that cannot be established reads false, 0 or "" (each
fact says which), so a routing rule can compare them without guarding against null,
and a record with missing fields never raises.

Inputs are the sidebar views (`LoopReturn`, `Order`), whose fields come from Loop's raw
fields as `normalize` maps them: `state` (return `state`), `shipping.labelStatus`
(`label_status`, "N/A" when absent), `shipping.labelUpdatedAt` (`label_updated_at`,
null when absent or not a timestamp), `exchange.items[].isOutOfStock`
(`exchanges[].out_of_stock`), `updatedAt`/`createdAt` (`updated_at`/`created_at`) and,
from Order Tracking, `shipments[].status`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from loopdesk.domain.models import LoopReturn, Order
from loopdesk.domain.timestamps import parse_iso

FactValue = bool | int | str
V = TypeVar("V", bool, int, str)

OPEN_STATES = frozenset({"open", "review"})
"""Return states in which Loop has not yet issued the refund, credit or exchange: a
return closes when it is processed; cancelled and expired returns never will be."""
DELIVERED_LABEL = "delivered"
UNUSED_LABEL_STATUSES = frozenset({"new", "pending", "pre_transit"})
"""Label statuses of a label that exists but has not been scanned by the carrier."""
SHIPMENT_PROBLEM_STATUSES = frozenset(
    {"SHIPMENT_STALLED", "ERROR", "ATTEMPTED_DELIVERY", "RETURNED"}
)
"""Order Tracking statuses (reference 8.2) that need the orders team: stalled, carrier
error, delivery attempted but failed, returned to sender."""
FINAL_SHIPMENT_STATUSES = frozenset({"DELIVERED", "RETURNED", "CANCELLED"})
DEFAULT_VIP_TAGS = ("VIP",)
TRUE_WORDS = frozenset({"true", "yes", "1"})


@dataclass(frozen=True)
class FactsPolicy:
    """The merchant's criteria that facts read (the `[vip]` table of the policy file).

    A customer is VIP when `attributes.vip` is true or `attributes.tags` holds "VIP"
    (the contract); `tags`, `attributes` and `emails` add criteria.
    """

    vip_tags: tuple[str, ...] = DEFAULT_VIP_TAGS
    vip_attributes: tuple[str, ...] = ("vip",)
    vip_emails: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Customer:
    """What the help desk says about the customer besides their addresses."""

    emails: tuple[str, ...] = ()
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FactInputs:
    """Everything one evaluation reads, with the parsing done once."""

    returns: Sequence[LoopReturn]
    orders: Sequence[Order]
    now: datetime
    policy: FactsPolicy
    customer: Customer
    exceptions_granted: int

    @property
    def open_returns(self) -> list[LoopReturn]:
        return [r for r in self.returns if _state(r) in OPEN_STATES]


@dataclass(frozen=True)
class FactDef:
    """One fact: its definition, as the README prints it, and how it is computed."""

    name: str
    type: type[bool] | type[int] | type[str]
    definition: str
    reads: str
    missing: str
    compute: Callable[[FactInputs], FactValue]

    @property
    def type_name(self) -> str:
        return {bool: "bool", int: "int", str: "string"}[self.type]


FACTS: list[FactDef] = []


def fact(
    name: str, kind: type[V], *, reads: str, missing: str
) -> Callable[[Callable[[FactInputs], V]], Callable[[FactInputs], V]]:
    """Register a fact; its docstring is its definition."""

    def register(compute: Callable[[FactInputs], V]) -> Callable[[FactInputs], V]:
        doc = " ".join((compute.__doc__ or "").split())
        FACTS.append(FactDef(name, kind, doc, reads, missing, compute))
        return compute

    return register


class Facts(Mapping[str, FactValue]):
    """The facts of one customer at one moment: an immutable name -> value mapping."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, FactValue]) -> None:
        self._values = dict(values)

    def __getitem__(self, name: str) -> FactValue:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Facts({self._values!r})"

    def to_json(self) -> dict[str, FactValue]:
        return dict(self._values)


def facts(
    returns: Iterable[LoopReturn],
    orders: Iterable[Order],
    now: datetime,
    policy: FactsPolicy | None = None,
    *,
    customer: Customer | None = None,
    exceptions_granted: int = 0,
) -> Facts:
    """Every fact in `FACTS`, for these returns and orders at `now` (aware)."""
    if now.tzinfo is None:
        raise ValueError("facts need an aware `now`")
    inputs = FactInputs(
        returns=list(returns),
        orders=list(orders),
        now=now,
        policy=policy or FactsPolicy(),
        customer=customer or Customer(),
        exceptions_granted=max(0, exceptions_granted),
    )
    return Facts({f.name: f.compute(inputs) for f in FACTS})


# --- readers ------------------------------------------------------------------------


def _state(ret: LoopReturn) -> str:
    return ret.state.strip().lower()


def _label(ret: LoopReturn) -> str:
    return ret.shipping.labelStatus.strip().lower()


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


def _whole_days(since: datetime | None, now: datetime) -> int:
    """Whole days from `since` to `now`; 0 for an unknown or future moment."""
    if since is None:
        return 0
    return max(0, math.floor((now - since).total_seconds() / 86_400))


def _shipment_status(value: str) -> str:
    """`shipment_stalled`, `Shipment Stalled` and `SHIPMENT-STALLED` read alike."""
    return "_".join(value.strip().upper().replace("-", " ").split())


def _delivered_at(ret: LoopReturn) -> datetime | None:
    return _moment(ret.shipping.labelUpdatedAt) or _moment(ret.updatedAt)


def _pending_refunds(inputs: FactInputs) -> list[LoopReturn]:
    return [r for r in inputs.open_returns if _label(r) == DELIVERED_LABEL]


# --- the facts, in the order they are shown -----------------------------------------


@fact(
    "has_open_return",
    bool,
    reads="return `state`",
    missing="a return without a state is not open",
)
def has_open_return(inputs: FactInputs) -> bool:
    """At least one return is open: its state is `open` or `review` (case-insensitive);
    `closed`, `cancelled` and `expired` returns are done."""
    return bool(inputs.open_returns)


@fact(
    "open_return_count",
    int,
    reads="return `state`",
    missing="a return without a state is not counted",
)
def open_return_count(inputs: FactInputs) -> int:
    """How many returns are open (state `open` or `review`)."""
    return len(inputs.open_returns)


@fact(
    "latest_return_state",
    str,
    reads="return `state`, `updated_at`, `created_at`",
    missing='"" when the customer has no returns or that return has no state',
)
def latest_return_state(inputs: FactInputs) -> str:
    """The state of the most recently updated return (ties: the later created), trimmed
    and lower-cased."""
    if not inputs.returns:
        return ""
    latest = max(
        inputs.returns,
        key=lambda r: (_moment(r.updatedAt) or inputs.now, _moment(r.createdAt) or inputs.now),
    )
    return _state(latest)


@fact(
    "refund_pending",
    bool,
    reads="return `state`, `label_status`",
    missing='no label reads as label status "N/A": not delivered, so not pending',
)
def refund_pending(inputs: FactInputs) -> bool:
    """An open return (state `open` or `review`) whose label status is `delivered`: the
    items reached the warehouse and Loop has not yet issued the refund, credit or
    exchange (Loop closes a return when it processes it)."""
    return bool(_pending_refunds(inputs))


@fact(
    "refund_pending_days",
    int,
    reads="return `state`, `label_status`, `label_updated_at` (else `updated_at`)",
    missing="0 when no refund is pending; without a `label_updated_at` timestamp the "
    "return's `updated_at` stands in (never earlier, so the count can only be lower)",
)
def refund_pending_days(inputs: FactInputs) -> int:
    """Whole days (floor, UTC) since delivery to the warehouse, for the longest-waiting
    pending refund. Delivery is the moment of the label's last status change
    (`label_updated_at`) while its status is `delivered`."""
    return max(
        (_whole_days(_delivered_at(r), inputs.now) for r in _pending_refunds(inputs)), default=0
    )


@fact(
    "exchange_out_of_stock",
    bool,
    reads="return `state`, `exchanges[].out_of_stock`",
    missing="an exchange item without `out_of_stock` is in stock",
)
def exchange_out_of_stock(inputs: FactInputs) -> bool:
    """An open return has an exchange item that is out of stock."""
    return any(item.isOutOfStock for r in inputs.open_returns for item in r.exchange.items)


@fact(
    "return_in_review",
    bool,
    reads="return `state`",
    missing="a return without a state is not in review",
)
def return_in_review(inputs: FactInputs) -> bool:
    """A return is in review (state `review`: flagged, waiting on the merchant)."""
    return any(_state(r) == "review" for r in inputs.returns)


@fact(
    "label_unused_days",
    int,
    reads="return `state`, `label_status`, `label_updated_at` (else `created_at`)",
    missing="0 when no open return has an unused label; without a `label_updated_at` "
    "timestamp the return's `created_at` stands in",
)
def label_unused_days(inputs: FactInputs) -> int:
    """Whole days since the label was issued, for the oldest label of an open return
    that the carrier has not scanned yet (status `new`, `pending` or `pre_transit`)."""
    return max(
        (
            _whole_days(_moment(r.shipping.labelUpdatedAt) or _moment(r.createdAt), inputs.now)
            for r in inputs.open_returns
            if _label(r) in UNUSED_LABEL_STATUSES
        ),
        default=0,
    )


@fact(
    "has_undelivered_order",
    bool,
    reads="Order Tracking `shipments[].status`",
    missing="an empty status is not known to be delivered, so it counts as undelivered; "
    "without Order Tracking there are no orders: false",
)
def has_undelivered_order(inputs: FactInputs) -> bool:
    """An order has not arrived: it has no shipments yet, or a shipment whose status is
    not final (`DELIVERED`, `RETURNED`, `CANCELLED`; any case)."""
    return any(
        not order.shipments
        or any(_shipment_status(s.status) not in FINAL_SHIPMENT_STATUSES for s in order.shipments)
        for order in inputs.orders
    )


@fact(
    "shipment_problem",
    bool,
    reads="Order Tracking `shipments[].status`",
    missing="an empty or unknown status is not a problem",
)
def shipment_problem(inputs: FactInputs) -> bool:
    """A shipment is stalled, in error, had a failed delivery attempt or went back to
    the sender: status `SHIPMENT_STALLED`, `ERROR`, `ATTEMPTED_DELIVERY` or `RETURNED`
    (any case, `-` or space for `_`)."""
    return any(
        _shipment_status(s.status) in SHIPMENT_PROBLEM_STATUSES
        for order in inputs.orders
        for s in order.shipments
    )


@fact(
    "exceptions_granted",
    int,
    reads="loopdesk's exceptions ledger (`exceptions` rows `granted` to any of the "
    "customer's addresses)",
    missing="0",
)
def exceptions_granted(inputs: FactInputs) -> int:
    """How many return-window exceptions loopdesk has granted this customer."""
    return inputs.exceptions_granted


@fact(
    "vip",
    bool,
    reads="the help desk's customer `attributes` and addresses, the policy file's `[vip]`",
    missing="no attributes (as in a plain lookup): false unless an address is listed",
)
def vip(inputs: FactInputs) -> bool:
    """The customer is VIP: `attributes.vip` is true (or "true"/"yes"/"1"), or
    `attributes.tags` holds "VIP" (any case), or a criterion of the policy file holds
    (another attribute, another tag, a listed address)."""
    policy, customer = inputs.policy, inputs.customer
    attributes = customer.attributes
    for name in policy.vip_attributes:
        value = attributes.get(name)
        if value is True or (isinstance(value, str) and value.strip().lower() in TRUE_WORDS):
            return True
    tags = attributes.get("tags")
    if isinstance(tags, str):
        tags = tags.replace(";", ",").split(",")
    if isinstance(tags, list):
        wanted = {t.strip().lower() for t in policy.vip_tags}
        if any(isinstance(t, str) and t.strip().lower() in wanted for t in tags):
            return True
    return any(e.strip().lower() in policy.vip_emails for e in customer.emails)


# --- documentation ------------------------------------------------------------------


def fact_types() -> dict[str, type[bool] | type[int] | type[str]]:
    return {f.name: f.type for f in FACTS}


def fact_table_markdown() -> str:
    """The README's fact table."""
    lines = [
        "| fact | type | definition | Loop fields read | when they are missing |",
        "| --- | --- | --- | --- | --- |",
    ]
    for f in FACTS:
        lines.append(f"| `{f.name}` | {f.type_name} | {f.definition} | {f.reads} | {f.missing} |")
    return "\n".join(lines) + "\n"
