"""Properties of routing: the same facts always give the same decision, and the rules
act in file order as documented (first deciding match wins; `continue` rules only add
tags), checked against a plain-Python reading of the same conditions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from loopdesk.domain.facts import FACTS
from loopdesk.routing.decide import FALLBACK_RULE, decide
from loopdesk.routing.rules import CHANNELS, INTENTS, load_rules, parse_rules

Values = dict[str, Any]

# Conditions with their meaning in Python, the oracle the CEL evaluation must agree with.
CONDITIONS: list[tuple[str, Callable[[Values], bool]]] = [
    ("vip", lambda v: v["vip"]),
    ("has_open_return", lambda v: v["has_open_return"]),
    (
        "refund_pending && refund_pending_days >= 7",
        lambda v: v["refund_pending"] and v["refund_pending_days"] >= 7,
    ),
    ("open_return_count > 1", lambda v: v["open_return_count"] > 1),
    ('latest_return_state == "review"', lambda v: v["latest_return_state"] == "review"),
    (
        "shipment_problem || exchange_out_of_stock",
        lambda v: v["shipment_problem"] or v["exchange_out_of_stock"],
    ),
    ('channel == "sms"', lambda v: v["channel"] == "sms"),
    (
        'intent in ["return_status", "return_exception"]',
        lambda v: v["intent"] in ("return_status", "return_exception"),
    ),
    (
        "!has_undelivered_order && label_unused_days >= 3",
        lambda v: not v["has_undelivered_order"] and v["label_unused_days"] >= 3,
    ),
    ("exceptions_granted > 0 && !vip", lambda v: v["exceptions_granted"] > 0 and not v["vip"]),
    (
        "return_in_review || refund_pending_days > 30",
        lambda v: v["return_in_review"] or v["refund_pending_days"] > 30,
    ),
]


def fact_values() -> st.SearchStrategy[Values]:
    by_type: dict[type, st.SearchStrategy[Any]] = {
        bool: st.booleans(),
        int: st.integers(min_value=0, max_value=60),
        str: st.sampled_from(["", "open", "review", "closed", "cancelled", "expired"]),
    }
    return st.fixed_dictionaries({f.name: by_type[f.type] for f in FACTS})


channels = st.sampled_from(["", *CHANNELS])
intents = st.sampled_from(["", *INTENTS])


@st.composite
def rule_lists(draw: st.DrawFn) -> list[tuple[int, bool]]:
    """Distinct conditions (by index), each deciding or `continue`; a catch-all last."""
    indexes = draw(
        st.lists(st.integers(0, len(CONDITIONS) - 1), min_size=1, max_size=8, unique=True)
    )
    return [(i, draw(st.booleans())) for i in indexes]


def rules_text(rules: list[tuple[int, bool]], *, catch_all: bool) -> str:
    parts = []
    for position, (index, fall_through) in enumerate(rules, start=1):
        condition = CONDITIONS[index][0]
        outcome = (
            f'continue = true\ntags = ["t{index}"]'
            if fall_through
            else f'queue = "q{index}"\npriority = {position}\ntags = ["d{index}"]'
        )
        parts.append(f"[[rule]]\nname = \"c{index}\"\ncondition = '''{condition}'''\n{outcome}\n")
    if catch_all:
        parts.append('[[rule]]\nname = "rest"\ncondition = "true"\nqueue = "general"\n')
    return "\n".join(parts)


@settings(max_examples=150, deadline=None)
@given(fact_values(), channels, intents)
def test_the_same_facts_always_give_the_same_decision(
    facts: Values, channel: str, intent: str
) -> None:
    rules = load_rules()
    first = decide(rules, facts, channel, intent)
    again = decide(rules, dict(facts), channel, intent)
    recompiled = decide(load_rules(), facts, channel, intent)
    assert first == again == recompiled
    assert first.to_json() == recompiled.to_json()


@settings(max_examples=200, deadline=None)
@given(rule_lists(), st.booleans(), fact_values(), channels, intents)
def test_first_deciding_match_wins_and_continue_rules_only_add_tags(
    rules: list[tuple[int, bool]], catch_all: bool, facts: Values, channel: str, intent: str
) -> None:
    compiled = parse_rules(rules_text(rules, catch_all=catch_all))
    got = decide(compiled, facts, channel, intent)
    values = {**facts, "channel": channel, "intent": intent}

    expected_rule, expected_queue, expected_priority = FALLBACK_RULE, "general", 0
    tags: list[str] = []
    results: list[str] = []
    for position, (index, fall_through) in enumerate(rules, start=1):
        if expected_rule != FALLBACK_RULE:
            results.append("not evaluated")
            continue
        holds = CONDITIONS[index][1](values)
        results.append("matched" if holds else "no match")
        if holds and fall_through:
            tags.append(f"t{index}")
        elif holds:
            tags.append(f"d{index}")
            expected_rule, expected_queue = f"c{index}", f"q{index}"
            expected_priority = position
    if catch_all:
        results.append("not evaluated" if expected_rule != FALLBACK_RULE else "matched")
        if expected_rule == FALLBACK_RULE:
            expected_rule, expected_queue = "rest", "general"

    assert got.rule == expected_rule
    assert (got.outcome.queue, got.outcome.priority) == (expected_queue, expected_priority)
    assert list(got.outcome.tags) == tags
    assert [s.result for s in got.trace] == results


@settings(max_examples=100, deadline=None)
@given(fact_values(), channels, intents, st.data())
def test_swapping_two_matching_deciding_rules_swaps_the_winner(
    facts: Values, channel: str, intent: str, data: st.DataObject
) -> None:
    values = {**facts, "channel": channel, "intent": intent}
    holding = [i for i, (_, meaning) in enumerate(CONDITIONS) if meaning(values)]
    if len(holding) < 2:
        return
    a, b = data.draw(st.lists(st.sampled_from(holding), min_size=2, max_size=2, unique=True))

    def winner(order: list[int]) -> Any:
        rules = parse_rules(rules_text([(i, False) for i in order], catch_all=True))
        return decide(rules, facts, channel, intent)

    forward, backward = winner([a, b]), winner([b, a])
    assert (forward.rule, forward.outcome.queue) == (f"c{a}", f"q{a}")
    assert (backward.rule, backward.outcome.queue) == (f"c{b}", f"q{b}")
    assert [s.result for s in forward.trace] == ["matched", "not evaluated", "not evaluated"]
