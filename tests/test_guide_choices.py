"""Reading a customer's answer to a closed question: numbers, label words, sizes, and
the words that steer the conversation (undo, cancel, yes...)."""

from __future__ import annotations

import pytest

from loopdesk.domain.money import minor_money
from loopdesk.guides.choices import Option, control, pick_exact, pick_many, pick_one
from loopdesk.guides.flows.create_return import OUTCOMES

ITEMS = [Option("7101001", "Canvas Sneaker 10"), Option("7101002", "Everyday Tote Sand")]
REASONS = [
    Option(str(n), name)
    for n, name in enumerate(
        ("Item was too big", "Item was too small", "Style not as expected", "Arrived damaged"),
        start=1,
    )
]
VARIANTS = [
    Option("41845504639228", "White / S", ("White", "S")),
    Option("41845504639229", "White / L", ("White", "L")),
]
SOLD_OUT = [Option("41845504639230", "Navy / M", ("Navy", "M"))]


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("1", ["7101001"]),
        ("2.", ["7101002"]),
        ("1 and 2", ["7101001", "7101002"]),
        ("both please", ["7101001", "7101002"]),
        ("all of them", ["7101001", "7101002"]),
        ("the sneakers", ["7101001"]),
        ("my shoes", []),
        ("the sneaker", ["7101001"]),
        ("just the tote", ["7101002"]),
        ("the tote and the sneaker", ["7101001", "7101002"]),
        ("Everyday Tote Sand", ["7101002"]),  # a quick reply, as sent back
        ("size 10", ["7101001"]),  # 10 is no position here: a word of the label
        ("3", []),
        ("hmm not sure", []),
    ],
)
def test_items_by_number_words_or_all(text: str, keys: list[str]) -> None:
    assert [o.key for o in pick_many(text, ITEMS)] == keys


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("1", "1"),
        ("it was too big", "1"),
        ("TOO SMALL", "2"),
        ("arrived damaged :(", "4"),
        ("the style", "3"),
        ("too", None),  # too big or too small: a tie is no answer
        ("9", None),
        ("", None),
    ],
)
def test_one_reason(text: str, key: str | None) -> None:
    chosen = pick_one(text, REASONS)
    assert (chosen.key if chosen else None) == key


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("large", "41845504639229"),
        ("white L", "41845504639229"),
        ("a small please", "41845504639228"),
        ("White / S", "41845504639228"),
        ("2", "41845504639229"),
        ("white", None),
        ("navy M", None),
    ],
)
def test_variants_by_option_words(text: str, key: str | None) -> None:
    chosen = pick_one(text, VARIANTS)
    assert (chosen.key if chosen else None) == key


def test_a_sold_out_variant_is_named_only_by_all_its_words() -> None:
    catalog = [*VARIANTS, *SOLD_OUT]
    assert pick_exact("navy medium", SOLD_OUT, catalog) == SOLD_OUT[0]
    assert pick_exact("do you have it in navy M?", SOLD_OUT, catalog) == SOLD_OUT[0]
    assert pick_exact("the navy one", SOLD_OUT, catalog) == SOLD_OUT[0]
    assert pick_exact("white M", SOLD_OUT, catalog) is None  # not "Navy / M" on "M" alone
    assert pick_exact("hmm", SOLD_OUT, catalog) is None
    assert pick_exact("", SOLD_OUT) is None


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("refund please", "refund"),
        ("money back", "refund"),
        ("store credit", "gift"),
        ("a gift card is fine", "gift"),
        ("exchange", "exchange"),
        ("can I get a different size", "exchange"),
        ("3", "exchange"),
    ],
)
def test_outcomes(text: str, key: str) -> None:
    chosen = pick_one(text, OUTCOMES)
    assert chosen is not None and chosen.key == key


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("cancel", "cancel"),
        ("never mind", "cancel"),
        ("Nevermind, I'll keep it", "cancel"),
        ("I don't want to return it anymore", "cancel"),
        ("stop", "cancel"),
        ("undo", "undo"),
        ("back", "undo"),
        ("go back please", "undo"),
        ("start over", "restart"),
        ("that's all", "done"),
        ("done", "done"),
        ("yes", "yes"),
        ("Yes, create it", "yes"),
        ("yep", "yes"),
        ("no", "no"),
        ("the sneaker", None),
        ("backpack", None),
        ("yesterday", None),
    ],
)
def test_control_words(text: str, word: str | None) -> None:
    assert control(text) == word


def test_an_email_reply_is_read_above_what_it_quotes() -> None:
    reply = (
        "The tote please.\n\nOn Tue, Mar 3, 2026 at 9:14 AM Juniper Supply Co. wrote:\n"
        "> Which items would you like to return?\n> 1. Canvas Sneaker (10), $75.00\n"
        "> 2. Everyday Tote (Sand), $45.00\n"
    )
    assert [o.key for o in pick_many(reply, ITEMS)] == ["7101002"]
    assert control('Yes\n\n-----Original Message-----\nReply "cancel" to stop') == "yes"
    assert control("> cancel") is None


def test_minor_money_keeps_integers() -> None:
    assert minor_money(1500, "USD") == "$15.00"
    assert minor_money(5, "USD") == "$0.05"
    assert minor_money(123456, "EUR") == "€1,234.56"
    assert minor_money(1200, "JPY") == "¥1,200"
    assert minor_money(1500, "KWD") == "1.500 KWD"
    assert minor_money(-1000, "SEK") == "-10.00 SEK"
    assert minor_money(700, None) == "7.00"
