"""What the guide reads from a message besides its intent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loopdesk.guides.entities import extract, order_name, postal_code, says_not_received


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("where is my order #1234", "#1234"),
        ("order 1234 pls", "#1234"),
        ("Order number: 55012", "#55012"),
        ("1234", "#1234"),
        ("it's 1086!", "#1086"),
        ("I want to return pedido 4521", "#4521"),
        ("orden #A-7781 todavía no llega", "#A-7781"),
        ("return 2 items from 1001", "#1001"),
        ("hi, order no. 1086, zip 43215", "#1086"),
        ("I paid $120 for it", None),
        ("my zip is 43215", None),
        ("I ordered on 12/03 and 14/03", None),
        ("where is my return", None),
        ("orders 1001 and 1002", None),  # two bare numbers: ask which
    ],
)
def test_order_names(text: str, expected: str | None) -> None:
    assert order_name(text) == expected


@pytest.mark.parametrize(
    ("text", "expecting", "expected"),
    [
        ("43215", True, "43215"),
        ("my zip is 43215", False, "43215"),
        ("zip code: 10024-1234", False, "10024-1234"),
        ("43215", False, None),  # a lone number unasked for is an order, not a ZIP
        ("K1A 0B1", False, "K1A 0B1"),
        ("sw1a 1aa", True, "SW1A 1AA"),
        ("2000", True, "2000"),  # Australian postcodes when asked
        ("hello", True, None),
    ],
)
def test_postal_codes(text: str, expecting: bool, expected: str | None) -> None:
    assert postal_code(text, expecting=expecting) == expected


def test_a_lone_number_is_what_the_guide_asked_for() -> None:
    asked_zip = extract("10024", expecting="verification")
    assert (asked_zip.postal_code, asked_zip.order_name) == ("10024", None)
    asked_order = extract("10024", expecting="order")
    assert (asked_order.postal_code, asked_order.order_name) == (None, "#10024")


@pytest.mark.parametrize(
    "text",
    [
        "tracking says delivered but I never got it",
        "it says delivered, but I didn't receive anything",
        "package marked delivered not here",
        "dice entregado pero no lo he recibido",
        "my parcel is missing",
    ],
)
def test_delivered_but_not_received(text: str) -> None:
    assert says_not_received(text)


@pytest.mark.parametrize("text", ["where is my order", "it arrived, thanks", "got it today"])
def test_received_is_not_a_complaint(text: str) -> None:
    assert not says_not_received(text)


@given(st.text(max_size=300), st.sampled_from(["", "order", "verification", "intent"]))
def test_any_text_reads_without_error(text: str, expecting: str) -> None:
    found = extract(text, expecting=expecting)
    if found.order_name is not None:
        assert found.order_name.startswith("#") and any(c.isdigit() for c in found.order_name)
    if found.postal_code is not None:
        assert 3 <= len(found.postal_code) <= 12
