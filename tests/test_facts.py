"""Routing facts on hand-made returns and orders: every state and label status, with
and without the fields they read; the README's table is the one the code defines."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from loopdesk.customers.view import CustomerView, LookupMeta
from loopdesk.domain.facts import FACTS, Customer, FactsPolicy, fact_table_markdown, facts
from loopdesk.domain.normalize import normalize_return
from loopdesk.sandbox.catalog import LABEL_STATUSES
from loopdesk.sandbox.catalog import RETURN_STATES as STATES
from tests.conftest import REPO
from tests.routing_data import loop_return, order, raw_return

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OPEN = {"open", "review"}
UNUSED = {"new", "pending", "pre_transit"}


def test_every_fact_is_defined_once_with_its_documentation() -> None:
    names = [f.name for f in FACTS]
    assert len(names) == len(set(names))
    required = {
        "has_open_return",
        "open_return_count",
        "latest_return_state",
        "refund_pending",
        "refund_pending_days",
        "exchange_out_of_stock",
        "return_in_review",
        "label_unused_days",
        "has_undelivered_order",
        "shipment_problem",
        "exceptions_granted",
        "vip",
    }
    assert required <= set(names)
    for f in FACTS:
        assert f.definition and f.reads and f.missing, f.name
    assert list(facts([], [], NOW)) == names


def test_no_returns_no_orders_reads_false_zero_empty() -> None:
    assert facts([], [], NOW).to_json() == {
        "has_open_return": False,
        "open_return_count": 0,
        "latest_return_state": "",
        "refund_pending": False,
        "refund_pending_days": 0,
        "exchange_out_of_stock": False,
        "return_in_review": False,
        "label_unused_days": 0,
        "has_undelivered_order": False,
        "shipment_problem": False,
        "exceptions_granted": 0,
        "vip": False,
    }


@pytest.mark.parametrize("label", LABEL_STATUSES)
@pytest.mark.parametrize("state", STATES)
def test_one_return_in_every_state_and_label_status(state: str, label: str) -> None:
    ret = loop_return("101", NOW, state=state, label_status=label, label_days_ago=9)
    got = facts([ret], [], NOW)
    is_open = state in OPEN
    pending = is_open and label == "delivered"
    assert got["has_open_return"] is is_open
    assert got["open_return_count"] == (1 if is_open else 0)
    assert got["latest_return_state"] == state
    assert got["refund_pending"] is pending
    assert got["refund_pending_days"] == (9 if pending else 0)
    assert got["return_in_review"] is (state == "review")
    assert got["label_unused_days"] == (9 if is_open and label in UNUSED else 0)
    assert got["exchange_out_of_stock"] is False


@pytest.mark.parametrize("state", STATES)
def test_out_of_stock_exchange_counts_only_while_the_return_is_open(state: str) -> None:
    out = loop_return("102", NOW, state=state, out_of_stock=True)
    in_stock = loop_return("103", NOW, state=state, out_of_stock=False)
    assert facts([out], [], NOW)["exchange_out_of_stock"] is (state in OPEN)
    assert facts([in_stock], [], NOW)["exchange_out_of_stock"] is False


@pytest.mark.parametrize(
    ("days_ago", "whole_days"),
    [(0, 0), (6.99, 6), (7, 7), (7.5, 7), (30, 30), (-2, 0)],  # a future stamp reads 0
)
def test_refund_pending_days_are_whole_days_since_delivery(
    days_ago: float, whole_days: int
) -> None:
    ret = loop_return("104", NOW, label_status="delivered", label_days_ago=days_ago)
    assert facts([ret], [], NOW)["refund_pending_days"] == whole_days


def test_the_longest_wait_and_the_latest_state_across_returns() -> None:
    returns = [
        loop_return("1", NOW, state="open", label_days_ago=2, updated_days_ago=2),
        loop_return("2", NOW, state="review", label_days_ago=11, updated_days_ago=5),
        loop_return("3", NOW, state="closed", label_days_ago=40, updated_days_ago=0.5),
        loop_return("4", NOW, state="open", label_status="new", label_days_ago=4),
    ]
    got = facts(returns, [], NOW)
    assert got["open_return_count"] == 3
    assert got["refund_pending_days"] == 11  # the closed return's refund was issued
    assert got["latest_return_state"] == "closed"
    assert got["label_unused_days"] == 4
    assert got["return_in_review"] is True


# --- missing fields: documented behaviour, never an exception ------------------------


def test_delivered_without_label_timestamp_counts_from_updated_at() -> None:
    ret = loop_return("201", NOW, label_days_ago=None, updated_days_ago=8)
    assert ret.shipping.labelUpdatedAt is None
    got = facts([ret], [], NOW)
    assert got["refund_pending"] is True
    assert got["refund_pending_days"] == 8


def test_delivered_without_any_timestamp_but_created() -> None:
    ret = normalize_return(
        raw_return("202", NOW, created_days_ago=12, drop=("label_updated_at", "updated_at"))
    )
    assert facts([ret], [], NOW)["refund_pending_days"] == 12  # updatedAt falls back too


def test_unused_label_without_timestamp_counts_from_created_at() -> None:
    ret = loop_return("203", NOW, label_status="new", label_days_ago=None, created_days_ago=15)
    assert facts([ret], [], NOW)["label_unused_days"] == 15


@pytest.mark.parametrize(
    "drop",
    [
        ("state",),
        ("label_status",),
        ("label_status", "label_updated_at"),
        ("exchanges",),
        ("line_items", "exchanges", "carrier", "tracking_number"),
        ("outcome", "refund", "return_total"),
    ],
)
def test_missing_fields_never_raise_and_read_as_documented(drop: tuple[str, ...]) -> None:
    ret = normalize_return(raw_return("204", NOW, out_of_stock=True, drop=drop))
    got = facts([ret], [], NOW)
    if "state" in drop:  # no state: not open, nothing pending, latest state ""
        assert got["has_open_return"] is False and got["refund_pending"] is False
        assert got["latest_return_state"] == ""
        assert got["exchange_out_of_stock"] is False
    elif "label_status" in drop:  # no label: "N/A", not delivered
        assert got["has_open_return"] is True
        assert got["refund_pending"] is False and got["refund_pending_days"] == 0
    elif "exchanges" in drop:
        assert got["exchange_out_of_stock"] is False
        assert got["refund_pending_days"] == 3
    else:
        assert got["refund_pending"] is True and got["exchange_out_of_stock"] is True


def test_an_exchange_item_without_out_of_stock_is_in_stock() -> None:
    raw = raw_return("205", NOW, out_of_stock=True)
    del raw["exchanges"][0]["out_of_stock"]
    assert facts([normalize_return(raw)], [], NOW)["exchange_out_of_stock"] is False


def test_states_are_read_ignoring_case_and_spaces() -> None:
    ret = loop_return("206", NOW, state=" Review ", label_status="DELIVERED")
    got = facts([ret], [], NOW)
    assert got["return_in_review"] and got["refund_pending"] and got["has_open_return"]
    assert got["latest_return_state"] == "review"


def test_an_unknown_state_is_not_open() -> None:
    ret = loop_return("207", NOW, state="needs review by a person")
    got = facts([ret], [], NOW)
    assert got["has_open_return"] is False and got["refund_pending"] is False


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        facts([], [], datetime(2026, 1, 1))


# --- orders -------------------------------------------------------------------------

PROBLEMS = {"SHIPMENT_STALLED", "ERROR", "ATTEMPTED_DELIVERY", "RETURNED"}
FINAL = {"DELIVERED", "RETURNED", "CANCELLED"}
SHIPMENT_STATUSES = [
    "PRE_TRANSIT",
    "TRANSIT",
    "SHIPMENT_STALLED",
    "ATTEMPTED_DELIVERY",
    "DELIVERED",
    "RETURNED",
    "ERROR",
    "SHIPMENT_CREATED",
    "READY_FOR_PICKUP",
    "OUT_FOR_DELIVERY",
    "CANCELLED",
    "CONFIRMED",
    "PENDING",
]


@pytest.mark.parametrize("status", SHIPMENT_STATUSES)
def test_shipment_status_facts(status: str) -> None:
    got = facts([], [order("#1", [status], NOW)], NOW)
    assert got["shipment_problem"] is (status in PROBLEMS)
    assert got["has_undelivered_order"] is (status not in FINAL)
    # GraphQL may spell them otherwise: the same facts.
    lower = facts([], [order("#1", [status.lower().replace("_", " ")], NOW)], NOW)
    assert lower["shipment_problem"] is got["shipment_problem"]


def test_orders_with_several_shipments_or_none() -> None:
    delivered = order("#1", ["DELIVERED", "DELIVERED"], NOW)
    partly = order("#2", ["DELIVERED", "TRANSIT"], NOW)
    nothing_shipped = order("#3", [], NOW)
    unknown = order("#4", [""], NOW)
    assert facts([], [delivered], NOW)["has_undelivered_order"] is False
    assert facts([], [delivered, partly], NOW)["has_undelivered_order"] is True
    assert facts([], [nothing_shipped], NOW)["has_undelivered_order"] is True
    got = facts([], [unknown], NOW)
    assert got["has_undelivered_order"] is True and got["shipment_problem"] is False


# --- VIP and the ledger ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "vip"),
    [
        ({}, False),
        ({"vip": True}, True),
        ({"vip": "true"}, True),
        ({"vip": "Yes"}, True),
        ({"vip": False}, False),
        ({"vip": "no"}, False),
        ({"tags": ["VIP"]}, True),
        ({"tags": ["vip", "wholesale"]}, True),
        ({"tags": "wholesale, VIP"}, True),
        ({"tags": ["wholesale"]}, False),
        ({"tags": [None, 3]}, False),
        ({"gold": True}, False),
    ],
)
def test_vip_by_the_contract(attributes: dict[str, object], vip: bool) -> None:
    got = facts([], [], NOW, customer=Customer(emails=("a@b.co",), attributes=attributes))
    assert got["vip"] is vip


def test_vip_by_the_policy_file_criteria() -> None:
    policy = FactsPolicy(
        vip_tags=("VIP", "Gold"), vip_attributes=("vip", "gold"), vip_emails=frozenset({"ceo@x.co"})
    )

    def vip(emails: tuple[str, ...], attributes: dict[str, object]) -> object:
        return facts([], [], NOW, policy, customer=Customer(emails, attributes))["vip"]

    assert vip(("a@b.co",), {"tags": ["gold"]}) is True
    assert vip(("a@b.co",), {"gold": "true"}) is True
    assert vip(("a@b.co", " CEO@x.co "), {}) is True
    assert vip(("a@b.co",), {"tags": ["silver"]}) is False


def test_exceptions_granted_is_what_the_ledger_says() -> None:
    assert facts([], [], NOW)["exceptions_granted"] == 0
    assert facts([], [], NOW, exceptions_granted=2)["exceptions_granted"] == 2


# --- the lookup view and the README ---------------------------------------------------


def test_the_lookup_view_carries_facts_of_its_own_returns_and_orders() -> None:
    returns = [loop_return("301", NOW - timedelta(days=1), label_days_ago=8)]
    view = CustomerView(
        returns=returns,
        orders=[order("#9", ["SHIPMENT_STALLED"], NOW)],
        meta=LookupMeta(emails=["jane@example.com"], source="store", fetchedAt=NOW.isoformat()),
    )
    body = view.to_json()
    assert list(body["facts"]) == [f.name for f in FACTS]
    assert body["facts"]["refund_pending"] is True
    assert body["facts"]["refund_pending_days"] >= 9  # as of now, a day after NOW at least
    assert body["facts"]["shipment_problem"] is True


def test_readme_fact_table_is_generated_from_the_definitions() -> None:
    readme = (REPO / "README.md").read_text()
    section = re.search(r"<!-- facts:begin -->\n(.*?)<!-- facts:end -->", readme, re.DOTALL)
    assert section, "README.md needs the generated fact table between facts:begin/end markers"
    assert section[1] == fact_table_markdown(), "regenerate: loopdesk rules facts"
