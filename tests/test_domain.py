from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from loopdesk.customers.profile import NO_EMAIL_MESSAGES, profile_emails
from loopdesk.domain.normalize import (
    display_outcome,
    normalize_notes,
    normalize_orders,
    normalize_return,
    normalize_returns,
    read_return,
    shipment_url,
)
from loopdesk.domain.timestamps import (
    checked_moment,
    checked_timestamp,
    normalize_timestamp,
    parse_timestamp,
)
from loopdesk.domain.upstream_errors import (
    action_failure_message,
    upstream_message,
    validation_errors,
)
from loopdesk.errors import InvalidInput, InvalidUpstreamData


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2022-11-02 00:13:08", "2022-11-02T00:13:08Z"),
        ("2022-11-02T00:13:08+00:00", "2022-11-02T00:13:08+00:00"),
        ("2023-01-01T22:27:16.000Z", "2023-01-01T22:27:16.000Z"),
        ("2023-01-01T22:27:16", "2023-01-01T22:27:16Z"),
        ("2023-01-01T20:27:16-02:00", "2023-01-01T22:27:16+00:00"),
        ("2022-11-02T00:13:08+0000", "2022-11-02T00:13:08+00:00"),
        ("2022-11-02T00:13:08-0000", "2022-11-02T00:13:08+00:00"),
        ("2022-11-02T00:13:08.5+0530", "2022-11-01T18:43:08.500000+00:00"),
        ("2023-01-01T22:27:16.000z", "2023-01-01T22:27:16.000Z"),
        ("9999-12-31T23:59:59-23:59", None),
        ("0001-01-01T00:00:00+14:00", None),
        ("0001-01-01T00:00:00Z", None),
        ("0001-01-01 00:00:00", None),
        ("9999-12-31T23:59:59Z", None),
        ("1969-12-31T23:59:59Z", None),
        ("2022-11-02T00:13:08+24:00", None),
        ("2022-11-02T00:13:08\x00", None),
        ("\u0662\u0660\u0662\u0662-11-02 00:13:08", None),
        ("N/A", None),
        ("", None),
        (None, None),
        (12345, None),
        ("2023-02-30 10:00:00", None),
        ("yesterday", None),
    ],
)
def test_timestamps(raw: object, expected: str | None) -> None:
    assert normalize_timestamp(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("credit", "Credit"),
        ("exchange+refund", "Exchange, Refund"),
        ("exchange+credit", "Exchange, Credit"),
        ("store_credit", "Store Credit"),
        ("gift_card+refund", "Gift Card, Refund"),
        ("", ""),
        (None, ""),
    ],
)
def test_outcome_display(raw: object, expected: str) -> None:
    assert display_outcome(raw) == expected


def test_return_keeps_money_exact_and_reads_placeholders() -> None:
    ret = normalize_return(
        {
            "id": 99,
            "state": "open",
            "created_at": "2026-01-01 10:00:00",
            "customer": "a@b.co",
            "return_total": "10.10",
            "refund": 0.1,
            "carrier": "N/A",
            "label_updated_at": "N/A",
            "return_method": None,
            "destination_id": 7295,
            "exchanges": [{"exchange_id": "1", "exchange_order_id": None, "out_of_stock": None}],
        }
    )
    assert ret.id == "99"
    assert ret.updatedAt == ret.createdAt == "2026-01-01T10:00:00Z"
    assert ret.return_.total == "10.10"
    assert ret.costBreakdown.refund == "0.10"
    assert ret.costBreakdown.upsell == "0.00"
    assert ret.shipping.labelUpdatedAt is None
    assert ret.shipping.returnMethod == ""
    assert ret.shipping.destinationId == "7295"
    assert ret.exchange.items[0].orderId == ""
    assert ret.exchange.items[0].isOutOfStock is False
    assert ret.currency == "USD"


@pytest.mark.parametrize(
    "raw",
    [
        {"state": "open", "created_at": "2026-01-01 10:00:00"},
        {"id": "1"},
        {"id": "1", "created_at": "0001-01-01T00:00:00+14:00"},
        {"id": "\x00", "created_at": "2026-01-01 10:00:00"},
        {"id": {"x": 1}, "created_at": "2026-01-01 10:00:00"},
        {"id": 10**400, "created_at": "2026-01-01 10:00:00"},
        "not an object",
    ],
)
def test_returns_that_cannot_be_shown_raise_one_typed_error(raw: object) -> None:
    with pytest.raises(InvalidUpstreamData):
        normalize_return(raw)


def test_returns_filter_by_profile_email_ignoring_case() -> None:
    body = {
        "data": [
            {"id": "1", "created_at": "2026-01-01 10:00:00", "customer": "Primary@Email.com"},
            {"id": "2", "created_at": "2026-01-01 10:00:00", "customer": "someone@else.com"},
            {"id": "3", "created_at": "2026-01-01 10:00:00"},
        ]
    }
    result = normalize_returns(body, ["primary@email.COM"])
    assert [r.id for r in result.items] == ["1"]
    assert [r.id for r in normalize_returns(body).items] == ["1", "2", "3"]


def test_returns_body_shapes() -> None:
    item = {"id": "1", "created_at": "2026-01-01 10:00:00", "customer": "a@b.co"}
    for body in ([item], {"data": [item]}, {"returns": [item], "nextPageUrl": None}):
        assert len(normalize_returns(body).items) == 1
    assert normalize_returns({"data": None}).items == []
    with pytest.raises(InvalidUpstreamData):
        normalize_returns({"status": "success"})


def test_one_bad_return_does_not_hide_the_others() -> None:
    good = {"id": "1", "created_at": "2026-01-01 10:00:00", "customer": "a@b.co"}
    bad = {"id": "2", "created_at": "2026-01-01 10:00:00", "customer": "a@b.co", "refund": "x"}
    unusable = {"customer": "a@b.co", "created_at": "2026-01-01 10:00:00"}
    result = normalize_returns([good, bad, unusable])
    assert [r.id for r in result.items] == ["1", "2"]
    assert result.items[1].costBreakdown.refund == "0.00"
    blanked, dropped = result.problems
    assert "return 2" in blanked.message
    assert blanked.details == {"returnId": "2", "field": "refund"}
    assert dropped.details == {"index": 2} and "`id` is missing" in dropped.message


BASE = {"id": "7", "created_at": "2026-01-01 10:00:00", "customer": "a@b.co"}
ITEM = {"line_item_id": "11", "price": "-29.99", "refund": "29.99", "title": "Shirt"}
EXCHANGE = {"exchange_id": "12", "exchange_order_id": 4804378558615, "total": "29.99"}


@pytest.mark.parametrize(
    ("changes", "fields", "check"),
    [
        ({"line_items": [None, ITEM]}, ["line_items[0]"], lambda r: len(r.return_.items) == 1),
        ({"line_items": [ITEM, "x", 3]}, ["line_items[1]", "line_items[2]"], None),
        ({"line_items": {"a": 1}}, ["line_items"], lambda r: r.return_.items == []),
        ({"exchanges": [EXCHANGE, None]}, ["exchanges[1]"], lambda r: len(r.exchange.items) == 1),
        ({"return_total": "N/A"}, ["return_total"], lambda r: r.return_.total == "0.00"),
        ({"return_total": "ten"}, ["return_total"], None),
        ({"refund": "NaN", "upsell": True}, ["refund", "upsell"], None),
        (
            {"line_items": [{**ITEM, "price": "N/A", "returned_at": "soon"}]},
            ["line_items[0].returned_at", "line_items[0].price"],
            lambda r: r.return_.items[0].cost.price == "0.00" and r.return_.items[0].title,
        ),
        (
            {"exchanges": [{**EXCHANGE, "exchange_order_id": "4.5", "out_of_stock": "maybe"}]},
            ["exchanges[0].exchange_order_id", "exchanges[0].out_of_stock"],
            lambda r: r.exchange.items[0].orderId == "" and r.exchange.items[0].cost.total,
        ),
        (
            {"updated_at": "9999-12-31T23:59:59-23:59"},
            ["updated_at"],
            lambda r: r.updatedAt == "2026-01-01T10:00:00Z",
        ),
        ({"edited_at": "0001-01-01T00:00:00+14:00"}, ["edited_at"], lambda r: not r.editedAt),
        ({"label_updated_at": {"at": 1}}, ["label_updated_at"], None),
        ({"state": ["open"], "outcome": {"x": 1}}, ["state", "outcome"], lambda r: r.state == ""),
    ],
)
def test_one_bad_field_reads_blank_and_is_named(
    changes: dict[str, object], fields: list[str], check: Any
) -> None:
    item, problems = read_return({**BASE, **changes})
    assert item.id == "7"
    assert [p.details for p in problems] == [{"returnId": "7", "field": f} for f in fields]
    assert all(p.message.startswith("return 7: ") for p in problems)
    assert check is None or check(item)
    assert normalize_return({**BASE, **changes}) == item  # the lenient reader agrees


def test_a_good_return_has_no_problems() -> None:
    raw = {**BASE, "line_items": [ITEM], "exchanges": [EXCHANGE], "updated_at": "N/A"}
    item, problems = read_return(raw)
    assert problems == [] and item.updatedAt == item.createdAt


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("29.9", "29.90"),
        ("29", "29.00"),
        (" -29.99 ", "-29.99"),
        ("0.125", "0.125"),
        ("1e2", "100.00"),
        ("-0.00", "0.00"),
        (29.9, "29.90"),
        (0.1 + 0.2, "0.30"),
        (5, "5.00"),
        (None, "0.00"),
        ("", "0.00"),
    ],
)
def test_money_reads_with_two_places(raw: object, expected: str) -> None:
    item = normalize_return({**BASE, "refund": raw})
    assert item.costBreakdown.refund == expected


@pytest.mark.parametrize("raw", ["N/A", "NaN", "Infinity", "1e999999999", "9" * 30, [1], {}])
def test_unusable_money_is_named(raw: object) -> None:
    item, problems = read_return({**BASE, "refund": raw})
    assert item.costBreakdown.refund == "0.00"
    assert [p.details["field"] for p in problems] == ["refund"]


def test_nul_bytes_never_reach_the_view() -> None:
    nul = "a\x00b"
    raw = {
        **BASE,
        "id": "7\x00",
        "customer": "a@b.co\x00",
        "state": nul,
        "carrier": nul,
        "created_at": "2026-01-01 10:00:00\x00",
        "updated_at": "2026-01-01 10:00:00",
        "refund": "1.00\x00",
        "line_items": [{**ITEM, "title": nul, "return_comment": "\x00"}],
    }
    result = normalize_returns([raw], ["a@b.co"])
    [item] = result.items
    dumped = json.dumps(item.to_json())
    assert "\\u0000" not in dumped and item.id == "7" and item.state == "ab"
    assert {p.details["field"] for p in result.problems} == {"created_at", "refund"}
    notes = normalize_notes([{"id": 1, "content": nul, "created_at": "N/A"}], "7")
    assert notes.items[0].content == "ab"


def test_notes_both_shapes_and_no_notes() -> None:
    raw = [{"id": 2825514, "content": "Note 2", "created_at": "2023-04-17 22:56:54"}]
    for body in (raw, {"notes": raw}):
        notes = normalize_notes(body, "25044777").items
        assert [n.model_dump() for n in notes] == [
            {
                "id": "2825514",
                "returnId": "25044777",
                "content": "Note 2",
                "createdAt": "2023-04-17T22:56:54Z",
            }
        ]
    assert normalize_notes(False, "1").items == []
    assert normalize_notes({"notes": None}, "1").items == []


def test_orders_graphql_error_is_typed() -> None:
    with pytest.raises(InvalidUpstreamData, match="boom"):
        normalize_orders({"data": None, "errors": [{"message": "boom"}]})
    assert normalize_orders({"data": {"orders": None}}).items == []


def test_shipment_url_encodes_order_names() -> None:
    assert shipment_url("#1001") == "https://app.wonderment.com/shipments?order_name=%231001"
    assert shipment_url("Order 123").endswith("order_name=Order%20123")


def test_profile_emails() -> None:
    assert profile_emails(
        ["b@x.co", "A@x.co", "a@x.co", " ", None, "c@x.co", "d@x.co", "e@x.co", "f@x.co"],
        primary="a@x.co",
    ) == ["a@x.co", "b@x.co", "c@x.co", "d@x.co", "e@x.co"]
    assert profile_emails(["a@x.co", "b@x.co"], limit=1) == ["a@x.co"]
    with pytest.raises(InvalidInput) as caught:
        profile_emails(["", None])
    assert caught.value.message == NO_EMAIL_MESSAGES["returns"]
    with pytest.raises(InvalidInput, match="not an email"):
        profile_emails(["nobody"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"errors": ['["errorCode1"]', '["errorCode2"]']}, '["errorCode1"]'),
        ({"message": "Server Error"}, "Server Error"),
        (
            {"errors": {"message": "Return is closed.", "code": "UNPROCESSABLE_RETURN"}},
            "Return is closed.",
        ),
        ({"errors": {"value": ["The value field is required."]}}, "The value field is required."),
        (
            {"content": "Return is expired and cannot be processed."},
            "Return is expired and cannot be processed.",
        ),
        ({"error": {"code": "401", "message": "Unauthorized."}}, "Unauthorized."),
        ("plain text", "plain text"),
        ({"message": "Return\x00 is closed."}, "Return is closed."),
        (None, "fallback"),
    ],
)
def test_upstream_messages(body: object, message: str) -> None:
    assert upstream_message(body, fallback="fallback") == message
    assert (
        action_failure_message(body, fallback="fallback")
        == f"unable to execute action: '{message}'"
    )


def test_validation_errors_prefer_laravel_message() -> None:
    assert validation_errors(
        {"message": "The value field is required.", "errors": {"value": ["x"]}}
    ) == [{"message": "The value field is required."}]
    assert validation_errors({"errors": {"message": "Missing fields"}}) == [
        {"message": "Missing fields"}
    ]
    assert validation_errors(False, fallback="Unprocessable") == [{"message": "Unprocessable"}]


@pytest.mark.parametrize(
    "raw", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z", "x"]
)
def test_unusable_timestamps_are_typed(raw: str) -> None:
    with pytest.raises(InvalidUpstreamData):
        checked_timestamp(raw)
    with pytest.raises(InvalidInput) as caught:
        parse_timestamp(raw, field="since")
    assert caught.value.details == {"field": "since"} and "`since`" in caught.value.message


def test_edge_timestamps_in_range_are_utc() -> None:
    moment = parse_timestamp("2026-01-01T05:00:00+0500", field="since")
    assert moment == datetime(2026, 1, 1, tzinfo=UTC)
    assert checked_moment(datetime(2026, 1, 1, 5), field="since").tzinfo is UTC
    for bad in (
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=23, minutes=59))),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
        datetime(1, 1, 1),
    ):
        with pytest.raises(InvalidInput):
            checked_moment(bad, field="since")
