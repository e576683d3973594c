"""Where a return stands, and when its refund, credit or exchange should land.

Pure functions over the sidebar's `LoopReturn` and the merchant's processing times (the
`[processing]` table of the policy file, business days per stage). The README's "When
the refund lands" section states the same computation in words.

Business days are Monday to Friday, counted on UTC dates; there is no holiday calendar,
so a public holiday counts as a working day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from loopdesk.domain.facts import DELIVERED_LABEL, OPEN_STATES, UNUSED_LABEL_STATUSES
from loopdesk.domain.models import LoopReturn
from loopdesk.domain.timestamps import parse_iso

Kind = Literal["refund", "credit", "exchange"]

# Labels the carrier has scanned and not yet delivered; `error` and `failure` are the
# carrier's trouble on the way, still on the way as far as the timeline goes.
MOVING_LABEL_STATUSES = frozenset({"in_transit", "out_for_delivery", "error", "failure"})
NO_LABEL = "n/a"
CREDIT_OUTCOMES = frozenset({"credit", "store_credit", "gift_card"})


class Stage(StrEnum):
    LABEL_UNUSED = "label_unused"
    ON_ITS_WAY = "on_its_way"
    AT_WAREHOUSE = "at_warehouse"  # delivered to the warehouse, awaiting processing
    PROCESSING = "processing"  # with the merchant, nothing to ship (no label)
    DONE_REFUND = "done_refund"
    DONE_CREDIT = "done_credit"
    DONE_EXCHANGE = "done_exchange"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    IN_REVIEW = "in_review"


DONE_STAGES = frozenset({Stage.DONE_REFUND, Stage.DONE_CREDIT, Stage.DONE_EXCHANGE})
FINAL_STAGES = DONE_STAGES | {Stage.CANCELLED, Stage.EXPIRED}


@dataclass(frozen=True)
class ProcessingTimes:
    """Business days per stage (the policy file's `[processing]`)."""

    in_transit_to_warehouse: int = 5  # the carrier, from the first scan to the warehouse
    warehouse_to_processed: int = 3  # the warehouse, from delivery to processing
    refund_to_account: int = 5  # the bank, from the refund to the customer's card
    credit_issued: int = 0  # store credit and gift cards arrive when processed
    exchange_ships: int = 2  # from processing to the exchange order leaving


def outcome_kind(outcome: str) -> Kind:
    """What the customer gets: an exchange when any part of Loop's (possibly compound)
    outcome is one, else credit for credit, store credit and gift cards, else a refund
    (also for an empty or unknown outcome). Loop's `exchange+refund` and the sidebar's
    `Exchange, Refund` read alike."""
    parts = {"_".join(p.lower().split()) for p in re.split(r"[+,]", outcome)}
    if "exchange" in parts:
        return "exchange"
    if parts & CREDIT_OUTCOMES and "refund" not in parts:
        return "credit"
    return "refund"


def return_stage(ret: LoopReturn) -> Stage:
    """The stage from the return's state, then its label status and outcome."""
    state = ret.state.strip().lower()
    if state == "cancelled":
        return Stage.CANCELLED
    if state == "expired":
        return Stage.EXPIRED
    if state == "review":
        return Stage.IN_REVIEW
    if state == "closed":
        return {
            "refund": Stage.DONE_REFUND,
            "credit": Stage.DONE_CREDIT,
            "exchange": Stage.DONE_EXCHANGE,
        }[outcome_kind(ret.outcome)]
    return _physical_stage(ret)


def _physical_stage(ret: LoopReturn) -> Stage:
    """Where the items are, for an open (or flagged) return: by the label."""
    label = ret.shipping.labelStatus.strip().lower()
    if label in UNUSED_LABEL_STATUSES:
        return Stage.LABEL_UNUSED
    if label == DELIVERED_LABEL:
        return Stage.AT_WAREHOUSE
    if label in MOVING_LABEL_STATUSES:
        return Stage.ON_ITS_WAY
    # No label (`N/A`, or none known): nothing to ship, the merchant has the return.
    return Stage.PROCESSING


def is_open(ret: LoopReturn) -> bool:
    return ret.state.strip().lower() in OPEN_STATES


def business_days_after(start: date, days: int) -> date:
    """The date `days` business days (Monday to Friday) after `start`; with 0, `start`
    itself when it is a business day, else the Monday after. Never a Saturday or
    Sunday. No holidays are known."""
    if days < 0:
        raise ValueError("days must not be negative")
    current = start
    while current.weekday() >= 5:  # a weekend start counts from the Monday
        current += timedelta(days=1)
    if days == 0:
        return current
    if start.weekday() >= 5:
        days -= 1  # that Monday is the first business day after the weekend start
    weeks, rest = divmod(days, 5)
    current += timedelta(weeks=weeks)
    for _ in range(rest):
        current += timedelta(days=1)
        while current.weekday() >= 5:
            current += timedelta(days=1)
    return current


@dataclass(frozen=True)
class Step:
    """One stage of the computation: `days` business days from `start` give `end`."""

    name: str
    days: int
    start: date
    end: date
    late: bool = False  # the stage should have ended before today: it counts from today

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "days": self.days,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "late": self.late,
        }


@dataclass(frozen=True)
class Estimate:
    """When the refund, credit or exchange should land, and how that was computed."""

    lands_on: date
    kind: Kind
    stage: Stage
    since: date  # the stage's starting date (see `since_field`)
    since_field: str  # which of the return's dates it is
    steps: tuple[Step, ...]

    @property
    def late(self) -> bool:
        """A stage already took longer than the merchant's processing times."""
        return any(s.late for s in self.steps)

    @property
    def business_days(self) -> int:
        return sum(s.days for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {
            "landsOn": self.lands_on.isoformat(),
            "kind": self.kind,
            "stage": self.stage.value,
            "since": self.since.isoformat(),
            "sinceField": self.since_field,
            "late": self.late,
            "steps": [s.to_json() for s in self.steps],
        }


# The steps still ahead of each physical stage, in order.
_AHEAD: dict[Stage, tuple[str, ...]] = {
    Stage.LABEL_UNUSED: ("in_transit_to_warehouse", "warehouse_to_processed"),
    Stage.ON_ITS_WAY: ("in_transit_to_warehouse", "warehouse_to_processed"),
    Stage.AT_WAREHOUSE: ("warehouse_to_processed",),
    Stage.PROCESSING: ("warehouse_to_processed",),
}
_LAST_STEP: dict[Kind, str] = {
    "refund": "refund_to_account",
    "credit": "credit_issued",
    "exchange": "exchange_ships",
}


def estimate(ret: LoopReturn, processing: ProcessingTimes, now: datetime) -> Estimate | None:
    """When the refund, credit or exchange should land; None once the return is done,
    cancelled or expired.

    From the stage's starting date each remaining stage adds its business days; a stage
    that should already have ended (the carrier or the warehouse is late) ends today at
    the earliest, so the date is never before today. An unused label counts from today
    (the customer has not sent the parcel yet). A return in review counts as the stage
    its label shows.
    """
    if now.tzinfo is None:
        raise ValueError("estimate needs an aware `now`")
    stage = return_stage(ret)
    if stage in FINAL_STAGES:
        return None
    physical = _physical_stage(ret) if stage is Stage.IN_REVIEW else stage
    today = business_days_after(now.astimezone(UTC).date(), 0)
    since, since_field = _since(ret, physical, today)
    kind = outcome_kind(ret.outcome)
    steps: list[Step] = []
    cursor = since
    for name in (*_AHEAD[physical], _LAST_STEP[kind]):
        days = int(getattr(processing, name))
        end = business_days_after(cursor, days)
        late = end < today
        if late:
            end = today
        steps.append(Step(name, days, cursor, end, late))
        cursor = end
    return Estimate(cursor, kind, stage, since, since_field, tuple(steps))


def _since(ret: LoopReturn, physical: Stage, today: date) -> tuple[date, str]:
    if physical is Stage.LABEL_UNUSED:
        return today, "today"
    # The label's last change is when it reached its status (scanned, delivered);
    # without it, the return's own last update (as the facts read it).
    for name, value in (
        ("label_updated_at", ret.shipping.labelUpdatedAt),
        ("updated_at", ret.updatedAt),
        ("created_at", ret.createdAt),
    ):
        moment = _moment(value)
        if moment is not None:
            return min(moment.astimezone(UTC).date(), today), name
    return today, "today"


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None
