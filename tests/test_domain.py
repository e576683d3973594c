from __future__ import annotations

import pytest

from loopdesk.customers.profile import NO_EMAIL_MESSAGES, profile_emails
from loopdesk.domain.normalize import (
    display_outcome,
    normalize_notes,
    normalize_orders,
    normalize_return,
    normalize_returns,
    shipment_url,
)
from loopdesk.domain.timestamps import normalize_timestamp
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
        {"id": "1", "created_at": "2026-01-01 10:00:00", "return_total": "ten"},
        {"id": "1", "created_at": "2026-01-01 10:00:00", "line_items": {"a": 1}},
        {"id": {"x": 1}, "created_at": "2026-01-01 10:00:00"},
        "not an object",
    ],
)
def test_bad_returns_raise_one_typed_error(raw: object) -> None:
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
    result = normalize_returns([good, bad])
    assert [r.id for r in result.items] == ["1"]
    assert "return 2" in result.problems[0].message


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
