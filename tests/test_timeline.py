"""A return's stage and when its refund, credit or exchange should land."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopdesk.domain.models import LoopReturn
from loopdesk.domain.normalize import normalize_return
from loopdesk.domain.timeline import (
    ProcessingTimes,
    Stage,
    business_days_after,
    estimate,
    outcome_kind,
    return_stage,
)
from loopdesk.sandbox.catalog import LABEL_STATUSES, OUTCOMES, RETURN_STATES, STATES_FOR_LABEL

# A Tuesday.
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
TIMES = ProcessingTimes()


def ret(
    *,
    state: str = "open",
    label: str = "in_transit",
    outcome: str = "refund",
    label_at: datetime | None = None,
    updated_at: datetime | None = None,
    created_at: datetime | None = None,
) -> LoopReturn:
    created = created_at or NOW - timedelta(days=10)
    raw: dict[str, Any] = {
        "id": "1",
        "state": state,
        "outcome": outcome,
        "created_at": created.isoformat(),
        "updated_at": (updated_at or created).isoformat(),
        "customer": "ann@example.com",
        "label_status": label,
        "carrier": "N/A" if label == "N/A" else "UPS",
        "tracking_number": "N/A" if label == "N/A" else "1Z1",
        "label_updated_at": "N/A" if label_at is None else label_at.isoformat(),
    }
    return normalize_return(raw)


# --- stages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "label", "outcome", "stage"),
    [
        ("open", "new", "refund", Stage.LABEL_UNUSED),
        ("open", "pending", "refund", Stage.LABEL_UNUSED),
        ("open", "pre_transit", "exchange", Stage.LABEL_UNUSED),
        ("open", "in_transit", "refund", Stage.ON_ITS_WAY),
        ("open", "out_for_delivery", "credit", Stage.ON_ITS_WAY),
        ("open", "error", "refund", Stage.ON_ITS_WAY),
        ("open", "delivered", "refund", Stage.AT_WAREHOUSE),
        ("OPEN", "Delivered", "refund", Stage.AT_WAREHOUSE),
        ("open", "N/A", "refund", Stage.PROCESSING),
        ("review", "delivered", "refund", Stage.IN_REVIEW),
        ("review", "N/A", "refund", Stage.IN_REVIEW),
        ("closed", "delivered", "refund", Stage.DONE_REFUND),
        ("closed", "N/A", "credit", Stage.DONE_CREDIT),
        ("closed", "delivered", "gift_card", Stage.DONE_CREDIT),
        ("closed", "delivered", "store_credit", Stage.DONE_CREDIT),
        ("closed", "delivered", "exchange+refund", Stage.DONE_EXCHANGE),
        ("closed", "delivered", "", Stage.DONE_REFUND),
        ("cancelled", "N/A", "refund", Stage.CANCELLED),
        ("expired", "new", "refund", Stage.EXPIRED),
    ],
)
def test_stage(state: str, label: str, outcome: str, stage: Stage) -> None:
    assert return_stage(ret(state=state, label=label, outcome=outcome)) is stage


@pytest.mark.parametrize(
    ("outcome", "kind"),
    [
        ("refund", "refund"),
        ("credit", "credit"),
        ("gift_card", "credit"),
        ("store_credit", "credit"),
        ("exchange", "exchange"),
        ("exchange+credit", "exchange"),
        ("credit+refund", "refund"),
        ("", "refund"),
        ("something new", "refund"),
        ("Exchange, Refund", "exchange"),  # as the sidebar shows them
        ("Store Credit", "credit"),
        ("Gift Card", "credit"),
    ],
)
def test_outcome_kind(outcome: str, kind: str) -> None:
    assert outcome_kind(outcome) == kind


def test_every_seeded_combination_has_a_stage() -> None:
    for label in LABEL_STATUSES:
        for state in STATES_FOR_LABEL[label]:
            for outcome in OUTCOMES:
                stage = return_stage(ret(state=state, label=label, outcome=outcome))
                assert isinstance(stage, Stage)
                done = estimate(ret(state=state, label=label, outcome=outcome), TIMES, NOW)
                assert (done is None) == (state in ("closed", "cancelled", "expired"))
    assert set(RETURN_STATES) == {"open", "closed", "cancelled", "expired", "review"}


# --- business days -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (date(2026, 12, 1), 0, date(2026, 12, 1)),  # Tue
        (date(2026, 12, 1), 3, date(2026, 12, 4)),  # Tue + 3 = Fri
        (date(2026, 12, 4), 1, date(2026, 12, 7)),  # Fri + 1 = Mon
        (date(2026, 12, 4), 5, date(2026, 12, 11)),  # Fri + 5 = next Fri
        (date(2026, 12, 5), 0, date(2026, 12, 7)),  # Sat + 0 = Mon
        (date(2026, 12, 5), 1, date(2026, 12, 7)),  # Sat + 1 = Mon (the first one)
        (date(2026, 12, 5), 3, date(2026, 12, 9)),  # Sat + 3 = Wed
        (date(2026, 12, 6), 6, date(2026, 12, 14)),  # Sun + 6 = Mon a week on
        (date(2026, 12, 1), 10, date(2026, 12, 15)),
    ],
)
def test_business_days_after(start: date, days: int, expected: date) -> None:
    assert business_days_after(start, days) == expected


def test_business_days_refuse_negative() -> None:
    with pytest.raises(ValueError):
        business_days_after(date(2026, 12, 1), -1)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)), st.integers(0, 400))
def test_business_days_never_land_on_a_weekend_and_count_right(start: date, days: int) -> None:
    end = business_days_after(start, days)
    assert end.weekday() < 5
    assert end >= start
    # Exactly `days` business days lie after `start` up to and including `end`
    # (a weekend start: the Monday after counts as the first).
    counted = sum(
        (start + timedelta(days=i)).weekday() < 5 for i in range(1, (end - start).days + 1)
    )
    if start.weekday() < 5:
        assert counted == days
    else:
        assert counted == max(days, 1)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)), st.integers(0, 300))
def test_business_days_are_monotonic(start: date, days: int) -> None:
    assert business_days_after(start, days) <= business_days_after(start, days + 1)
    assert business_days_after(start, days) <= business_days_after(start + timedelta(1), days)


# --- estimates ---------------------------------------------------------------------


def test_on_its_way_counts_from_the_label_scan() -> None:
    scanned = datetime(2026, 11, 30, 9, tzinfo=UTC)  # Monday
    got = estimate(ret(label="in_transit", label_at=scanned), TIMES, NOW)
    assert got is not None
    assert (got.kind, got.stage, got.since, got.since_field) == (
        "refund",
        Stage.ON_ITS_WAY,
        date(2026, 11, 30),
        "label_updated_at",
    )
    assert [(s.name, s.days, s.start, s.end) for s in got.steps] == [
        ("in_transit_to_warehouse", 5, date(2026, 11, 30), date(2026, 12, 7)),
        ("warehouse_to_processed", 3, date(2026, 12, 7), date(2026, 12, 10)),
        ("refund_to_account", 5, date(2026, 12, 10), date(2026, 12, 17)),
    ]
    assert got.lands_on == date(2026, 12, 17)
    assert got.business_days == 13 and not got.late
    assert got.to_json()["landsOn"] == "2026-12-17"


def test_at_the_warehouse_credit_lands_when_processed() -> None:
    delivered = datetime(2026, 11, 27, 18, tzinfo=UTC)  # Friday
    got = estimate(ret(label="delivered", outcome="store_credit", label_at=delivered), TIMES, NOW)
    assert got is not None and got.kind == "credit"
    assert [s.name for s in got.steps] == ["warehouse_to_processed", "credit_issued"]
    assert got.lands_on == date(2026, 12, 2)  # Fri + 3 business days = Wed, + 0


def test_exchange_ships_after_processing() -> None:
    delivered = datetime(2026, 11, 30, tzinfo=UTC)
    got = estimate(
        ret(label="delivered", outcome="exchange+refund", label_at=delivered), TIMES, NOW
    )
    assert got is not None and got.kind == "exchange"
    assert got.steps[-1].name == "exchange_ships"
    assert got.lands_on == date(2026, 12, 7)  # Mon + 3 = Thu, + 2 = Mon


def test_a_late_stage_counts_from_today() -> None:
    # Scanned three weeks ago and still not at the warehouse: the carrier is late.
    scanned = NOW - timedelta(days=21)
    got = estimate(ret(label="in_transit", label_at=scanned), TIMES, NOW)
    assert got is not None and got.late
    assert got.steps[0].late and got.steps[0].end == NOW.date()
    assert got.lands_on == business_days_after(business_days_after(NOW.date(), 3), 5)


def test_unused_label_counts_from_today() -> None:
    got = estimate(ret(label="new", label_at=NOW - timedelta(days=2)), TIMES, NOW)
    assert got is not None and got.since == NOW.date() and got.since_field == "today"
    assert got.lands_on == business_days_after(NOW.date(), 13)


def test_without_a_label_time_the_return_dates_stand_in() -> None:
    got = estimate(ret(label="delivered", updated_at=NOW - timedelta(days=1)), TIMES, NOW)
    assert got is not None and got.since_field == "updated_at"
    assert got.since == (NOW - timedelta(days=1)).date()
    no_label = estimate(ret(label="N/A", updated_at=NOW - timedelta(days=1)), TIMES, NOW)
    assert no_label is not None and no_label.stage is Stage.PROCESSING
    assert [s.name for s in no_label.steps] == ["warehouse_to_processed", "refund_to_account"]


def test_review_counts_as_the_label_shows() -> None:
    delivered = datetime(2026, 11, 30, tzinfo=UTC)
    review = estimate(ret(state="review", label="delivered", label_at=delivered), TIMES, NOW)
    open_ = estimate(ret(state="open", label="delivered", label_at=delivered), TIMES, NOW)
    assert review is not None and open_ is not None
    assert review.stage is Stage.IN_REVIEW and review.lands_on == open_.lands_on


@pytest.mark.parametrize("state", ["closed", "cancelled", "expired"])
def test_no_estimate_once_done(state: str) -> None:
    assert estimate(ret(state=state, label="delivered"), TIMES, NOW) is None


def test_estimate_needs_an_aware_now() -> None:
    with pytest.raises(ValueError):
        estimate(ret(), TIMES, NOW.replace(tzinfo=None))


_moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)
)
_days = st.integers(0, 30)
_times = st.builds(ProcessingTimes, _days, _days, _days, _days, _days)
_open = st.sampled_from(
    [
        (s, label)
        for label, states in STATES_FOR_LABEL.items()
        for s in states
        if s in ("open", "review")
    ]
)


@settings(max_examples=300)
@given(_open, st.sampled_from(OUTCOMES), _moments, _moments, _times)
def test_open_returns_never_land_before_today(
    case: tuple[str, str], outcome: str, label_at: datetime, now: datetime, times: ProcessingTimes
) -> None:
    state, label = case
    got = estimate(ret(state=state, label=label, outcome=outcome, label_at=label_at), times, now)
    assert got is not None
    assert got.lands_on >= now.date()
    assert got.lands_on.weekday() < 5
    assert all(s.end >= s.start for s in got.steps)


@settings(max_examples=300)
@given(
    _open,
    st.sampled_from(OUTCOMES),
    _moments,
    _times,
    st.sampled_from(
        [
            "in_transit_to_warehouse",
            "warehouse_to_processed",
            "refund_to_account",
            "credit_issued",
            "exchange_ships",
        ]
    ),
    st.integers(1, 20),
)
def test_more_processing_days_never_land_earlier(
    case: tuple[str, str],
    outcome: str,
    label_at: datetime,
    times: ProcessingTimes,
    stage: str,
    more: int,
) -> None:
    state, label = case
    item = ret(state=state, label=label, outcome=outcome, label_at=label_at)
    slower = ProcessingTimes(**{**times.__dict__, stage: getattr(times, stage) + more})
    now = label_at + timedelta(days=3)
    before, after = estimate(item, times, now), estimate(item, slower, now)
    assert before is not None and after is not None
    assert after.lands_on >= before.lands_on
