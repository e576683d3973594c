"""Whether a return-window exception can be made for an order: the merchant's criteria,
each evaluated and explained.

`exception_decision` is pure: the order's delivery (from Order Tracking), its items,
the customer's earlier exceptions and any grant for this order (from the ledger), the
policy and the moment. Every criterion is evaluated, in this order, and kept with its
detail, so the ledger can explain the decision afterwards:

1. `delivered_known`: Order Tracking says when the order was delivered.
2. `within_window`: the return window (`window_days` from delivery) is still open.
   Then no exception is needed: the outcome is `within_window`.
3. `within_grace`: the window closed at most `grace_days` ago (VIP customers:
   `grace_days x vip_grace_multiplier`).
4. `not_used_in_period`: the customer had no exception in the last `once_per_days`
   days (0: no limit).
5. `not_all_final_sale`: at least one item of the order is not final sale (a final-sale
   item is one whose SKU starts with a `final_sale_skus` prefix or whose product or
   variant name holds a `final_sale_titles` text, any case).

Days are calendar days on UTC dates: delivered on the 1st with a 30-day window, the
window is open through the 31st, and with 7 days of grace an exception can be made
through the 7th day after.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, Protocol

from loopdesk.domain.shipments import Delivery, TrackedItem
from loopdesk.policy.file import Policy

Outcome = Literal["within_window", "eligible", "refused", "unknown", "already_granted"]
OUTCOMES: tuple[Outcome, ...] = (
    "within_window",
    "eligible",
    "refused",
    "unknown",
    "already_granted",
)
CRITERIA = (
    "delivered_known",
    "within_window",
    "within_grace",
    "not_used_in_period",
    "not_all_final_sale",
)
# The refusal words (`[exceptions.words]`) of each criterion that can refuse.
WORDS_FOR = {
    "within_grace": "outside_grace",
    "not_used_in_period": "already_used",
    "not_all_final_sale": "final_sale",
}


class Decided(Protocol):
    """An earlier exception, as the ledger holds it."""

    @property
    def decided_at(self) -> datetime: ...


@dataclass(frozen=True)
class Criterion:
    name: str
    held: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "held": self.held, "detail": self.detail}


@dataclass(frozen=True)
class ExceptionDecision:
    order_name: str
    outcome: Outcome
    criteria: list[Criterion]
    reason: str  # the merchant's words for the rule that refused ("" otherwise)
    rule: str  # that rule's name in `[exceptions.words]` ("" when none refused)
    decided_at: datetime
    vip: bool
    delivered_at: datetime | None
    window_closed_on: date | None  # the window's last day
    grace_ends_on: date | None  # the last day an exception can be made
    grace_days: int  # this customer's grace (VIP: multiplied)
    final_sale_items: list[TrackedItem] = field(default_factory=list)

    @property
    def held(self) -> list[str]:
        return [c.name for c in self.criteria if c.held]

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.criteria if not c.held]

    def criterion(self, name: str) -> Criterion:
        return next(c for c in self.criteria if c.name == name)

    def to_json(self) -> dict[str, Any]:
        return {
            "orderName": self.order_name,
            "outcome": self.outcome,
            "criteria": [c.to_json() for c in self.criteria],
            "reason": self.reason,
            "rule": self.rule,
            "decidedAt": self.decided_at.isoformat(),
            "vip": self.vip,
            "deliveredAt": self.delivered_at.isoformat() if self.delivered_at else None,
            "windowClosedOn": _day(self.window_closed_on),
            "graceEndsOn": _day(self.grace_ends_on),
            "graceDays": self.grace_days,
            "finalSaleItems": [i.to_json() for i in self.final_sale_items],
        }


def is_final_sale(item: TrackedItem, policy: Policy) -> bool:
    rules = policy.exceptions
    sku = item.sku.strip().casefold()
    if sku and any(sku.startswith(p.casefold()) for p in rules.final_sale_skus):
        return True
    names = f"{item.name}\n{item.variant}".casefold()
    return any(t.casefold() in names for t in rules.final_sale_titles)


def exception_decision(
    *,
    order_name: str,
    delivered_at: datetime | None,
    now: datetime,
    vip: bool,
    order_items: Sequence[TrackedItem],
    customer_grants: Sequence[Decided],
    order_grant: Decided | None,
    policy: Policy,
    delivery: Delivery | None = None,
) -> ExceptionDecision:
    """The decision for an exception on `order_name` now.

    `customer_grants`: the customer's exceptions granted (or being granted); `order_grant`:
    this order's grant, if any (then the outcome is `already_granted`, whatever else
    holds). `delivery` tells an order not delivered yet (`undelivered`: refused, the
    window has not started) from one whose delivery time is unknown (`unknown`: a person
    decides); without it, a missing `delivered_at` is unknown.
    """
    if now.tzinfo is None:
        raise ValueError("exception_decision needs an aware `now`")
    rules = policy.exceptions
    today = now.astimezone(UTC).date()
    grace_days = rules.grace_for(vip)
    status = delivery or ("delivered" if delivered_at is not None else "unknown")
    if delivered_at is None and status == "delivered":
        status = "unknown"
    criteria: list[Criterion] = []
    closed_on = grace_ends = None
    delivered_on = delivered_at.astimezone(UTC).date() if delivered_at is not None else None

    if delivered_on is not None:
        criteria.append(Criterion("delivered_known", True, f"delivered on {delivered_on}"))
        closed_on = delivered_on + timedelta(days=policy.returns.window_days)
        grace_ends = closed_on + timedelta(days=grace_days)
        open_window = today <= closed_on
        criteria.append(
            Criterion(
                "within_window",
                open_window,
                f"the {policy.returns.window_days}-day window "
                + (f"is open through {closed_on}" if open_window else f"closed on {closed_on}"),
            )
        )
        in_grace = today <= grace_ends
        who = " (VIP)" if vip and grace_days != rules.grace_days else ""
        criteria.append(
            Criterion(
                "within_grace",
                in_grace,
                f"{grace_days} days of grace{who} "
                + (f"through {grace_ends}" if in_grace else f"ended on {grace_ends}"),
            )
        )
    else:
        missing = (
            "not delivered yet: the window has not started"
            if status == "undelivered"
            else "Order Tracking gives no delivery time"
        )
        criteria.append(Criterion("delivered_known", False, missing))
        criteria.append(Criterion("within_window", False, "unknown without a delivery date"))
        criteria.append(Criterion("within_grace", False, "unknown without a delivery date"))

    criteria.append(_period(customer_grants, now, rules.once_per_days))
    final_sale = [item for item in order_items if is_final_sale(item, policy)]
    all_final = bool(order_items) and len(final_sale) == len(order_items)
    if not order_items:
        detail = "Order Tracking lists no items"
    elif all_final:
        detail = "every item is final sale"
    elif final_sale:
        detail = f"{len(final_sale)} of {len(order_items)} items are final sale"
    else:
        detail = "no item is final sale"
    criteria.append(Criterion("not_all_final_sale", not all_final, detail))

    outcome: Outcome
    rule = ""
    if order_grant is not None:
        outcome = "already_granted"
    elif delivered_on is None:
        outcome = "refused" if status == "undelivered" else "unknown"
        rule = "not_delivered" if status == "undelivered" else "unknown_delivery"
    elif criteria[1].held:
        outcome = "within_window"
    else:
        failing = next((c for c in criteria[2:] if not c.held), None)
        if failing is None:
            outcome = "eligible"
        else:
            outcome, rule = "refused", WORDS_FOR[failing.name]
    values = {
        "shop": policy.shop.name,
        "order": order_name,
        "window_days": str(policy.returns.window_days),
        "grace_days": str(grace_days),
        "once_per_days": str(rules.once_per_days),
        "delivered_on": _day(delivered_on) or "",
        "window_closed_on": _day(closed_on) or "",
        "grace_ends_on": _day(grace_ends) or "",
    }
    return ExceptionDecision(
        order_name=order_name,
        outcome=outcome,
        criteria=criteria,
        reason=rules.words.say(rule, values) if rule else "",
        rule=rule,
        decided_at=now,
        vip=vip,
        delivered_at=delivered_at,
        window_closed_on=closed_on,
        grace_ends_on=grace_ends,
        grace_days=grace_days,
        final_sale_items=final_sale,
    )


def _period(grants: Sequence[Decided], now: datetime, days: int) -> Criterion:
    if days == 0:
        return Criterion("not_used_in_period", True, "no limit on exceptions per customer")
    since = now - timedelta(days=days)
    recent = [g for g in grants if g.decided_at > since]
    if recent:
        last = max(g.decided_at for g in recent).astimezone(UTC).date()
        return Criterion("not_used_in_period", False, f"an exception on {last}, within {days} days")
    return Criterion("not_used_in_period", True, f"no exception in the last {days} days")


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None
