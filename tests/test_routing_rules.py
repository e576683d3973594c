"""Rules files: every kind of error through `loopdesk rules check`, with the rule's name,
position and reason; the default rules; and decisions over hand-made facts."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopdesk.cli.main import app
from loopdesk.domain.facts import FACTS, facts
from loopdesk.routing.decide import FALLBACK_RULE, decide
from loopdesk.routing.rules import RulesError, load_rules, parse_rules
from tests.test_facts import NOW

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LOOPDESK_RULES_FILE", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray loopdesk.toml


GOOD = """
[[rule]]
name = "first"
condition = "refund_pending_days >= 7"
queue = "returns-priority"
priority = 90

[[rule]]
name = "rest"
condition = "true"
queue = "general"
"""


def check(tmp_path: Path, text: str) -> tuple[int, str, str]:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    result = runner.invoke(app, ["rules", "check", str(path)])
    return result.exit_code, result.stdout, result.stderr


def rule(name: str, condition: str, extra: str = 'queue = "q"') -> str:
    """One [[rule]] table; the condition as a TOML literal string (no escapes)."""
    return f"\n[[rule]]\nname = \"{name}\"\ncondition = '''{condition}'''\n{extra}\n"


def test_a_valid_file_exits_zero(tmp_path: Path) -> None:
    code, out, err = check(tmp_path, GOOD)
    assert (code, err) == (0, "")
    assert "2 rules" in out


def test_the_default_rules_are_valid_and_follow_the_brief() -> None:
    result = runner.invoke(app, ["rules", "check"])
    assert result.exit_code == 0, result.stderr
    rules = load_rules()

    def queue(**values: object) -> tuple[str, int]:
        base = facts([], [], NOW).to_json()
        decision = decide(rules, {**base, **values}, "chat", "")  # type: ignore[dict-item]
        return decision.outcome.queue, decision.outcome.priority

    assert queue() == ("general", 10)
    assert queue(has_open_return=True) == ("returns", 50)
    assert queue(shipment_problem=True) == ("orders", 50)
    pending = {"has_open_return": True, "refund_pending": True}
    assert queue(**pending, refund_pending_days=6) == ("returns", 50)
    assert queue(**pending, refund_pending_days=7, shipment_problem=True) == (
        "returns-priority",
        90,
    )
    assert queue(has_open_return=True, shipment_problem=True) == ("returns", 50)
    high, low = queue(**pending, refund_pending_days=7)[1], queue()[1]
    assert high > low


# Each kind of error: (file text, the position and name reported, words of the reason).
ERRORS = {
    "toml syntax": ("[[rule]\nname = 'a'\n", None, None, "not valid TOML"),
    "cel syntax": (GOOD + rule("broken", "refund_pending_days >= "), 3, "broken", "syntax error"),
    "unknown fact": (
        rule("typo", "refund_pending_dayz >= 7") + GOOD,
        1,
        "typo",
        "unknown fact `refund_pending_dayz` (did you mean `refund_pending_days`?)",
    ),
    "type error": (
        rule("types", "latest_return_state >= 7") + GOOD,
        1,
        "types",
        "type error",
    ),
    "type error behind a branch": (
        rule("branch", "has_open_return && refund_pending_days > 'seven'") + GOOD,
        1,
        "branch",
        "type error",
    ),
    "not a bool": (rule("count", "open_return_count + 1") + GOOD, 1, "count", "not a bool"),
    "unknown function": (rule("fn", "urgent(vip)") + GOOD, 1, "fn", "unknown function `urgent`"),
    "unreachable after true": (
        GOOD + rule("late", "has_open_return"),
        3,
        "late",
        'unreachable: rule 2 "rest" before it always matches',
    ),
    "unreachable duplicate": (
        rule("a", "vip && has_open_return")
        + rule("b", "vip&&has_open_return", 'queue = "other"')
        + GOOD,
        2,
        "b",
        'unreachable: rule 1 "a" has the same condition',
    ),
    "missing queue": (rule("noqueue", "vip", "") + GOOD, 1, "noqueue", "`queue` is required"),
    "unknown key": (rule("k", "vip", 'queue = "q"\nqeueu = "x"') + GOOD, 1, "k", "`qeueu`"),
    "bad priority": (rule("p", "vip", 'queue = "q"\npriority = "high"') + GOOD, 1, "p", "priority"),
    "continue with a queue": (
        rule("c", "vip", 'queue = "q"\ncontinue = true\ntags = ["vip"]') + GOOD,
        1,
        "c",
        "only adds tags",
    ),
    "continue without tags": (rule("c", "vip", "continue = true") + GOOD, 1, "c", "must add"),
    "duplicate name": (GOOD.replace('"rest"', '"first"'), 2, "first", "same name"),
    "no rules": ("# nothing\n", None, None, "no [[rule]]"),
}


@pytest.mark.parametrize("kind", list(ERRORS))
def test_every_kind_of_error_names_rule_position_and_reason(tmp_path: Path, kind: str) -> None:
    text, position, name, reason = ERRORS[kind]
    code, out, err = check(tmp_path, text)
    assert code != 0
    assert out == ""
    flat = " ".join(err.split())
    assert str(tmp_path / "rules.toml") in flat.replace(" ", "") or "rules.toml" in flat
    assert reason in flat
    if position is not None:
        assert f'rule {position} "{name}"' in flat
        # the line of the rule's [[rule]] header
        header_lines = [i + 1 for i, ln in enumerate(text.splitlines()) if ln == "[[rule]]"]
        assert f"rules.toml:{header_lines[position - 1]}:" in flat.replace(" ", "")


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    text = rule("a", "nope") + rule("b", "vip >") + GOOD
    code, _, err = check(tmp_path, text)
    assert code != 0
    assert 'rule 1 "a"' in err and 'rule 2 "b"' in err


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["rules", "check", str(tmp_path / "absent.toml")])
    assert result.exit_code != 0 and "cannot read" in result.stderr


def test_macros_may_bind_their_own_variables() -> None:
    rules = parse_rules(
        rule("m", '["return_status", "return_exception"].exists(i, intent == i)') + GOOD
    )
    got = decide(rules, facts([], [], NOW), "chat", "return_exception")
    assert got.rule == "m"


def test_string_literals_are_not_squeezed_when_comparing_conditions() -> None:
    text = rule("a", 'channel == "e mail"') + rule("b", 'channel == "email"') + GOOD
    assert parse_rules(text).names[:2] == ("a", "b")


def test_a_continue_rule_may_repeat_a_condition_and_only_adds_tags() -> None:
    text = (
        rule("tag-vip", "vip", 'continue = true\ntags = ["vip"]\nnote = "A VIP."')
        + rule("vip-queue", "vip", 'queue = "vip"\npriority = 80\ntags = ["fast"]')
        + GOOD
    )
    rules = parse_rules(text)
    base = facts([], [], NOW).to_json()
    got = decide(rules, {**base, "vip": True})
    assert (got.rule, got.outcome.queue, got.outcome.tags) == ("vip-queue", "vip", ("vip", "fast"))
    assert got.outcome.note == "A VIP."
    plain = decide(rules, base)
    assert (plain.rule, plain.outcome.tags) == ("rest", ())


def test_the_trace_lists_every_rule_with_its_result_and_reads() -> None:
    rules = load_rules()
    base = facts([], [], NOW).to_json()
    got = decide(rules, {**base, "has_open_return": True, "vip": True}, "email", "")
    assert [s.rule for s in got.trace] == list(rules.names)
    results = {s.rule: s.result for s in got.trace}
    assert results == {
        "vip": "matched",
        "refund-waiting-a-week": "no match",
        "open-return": "matched",
        "shipment-problem": "not evaluated",
        "everything-else": "not evaluated",
    }
    reads = {s.rule: s.reads for s in got.trace}
    assert reads["refund-waiting-a-week"] == {"refund_pending": False, "refund_pending_days": 0}
    assert reads["everything-else"] == {}


def test_no_deciding_match_falls_back_to_general() -> None:
    rules = parse_rules(rule("only", "vip"))
    got = decide(rules, facts([], [], NOW))
    assert (got.rule, got.outcome.queue, got.outcome.priority) == (FALLBACK_RULE, "general", 0)


def test_conditions_read_channel_and_intent() -> None:
    rules = parse_rules(
        rule("sms-status", 'channel == "sms" && intent == "return_status"', 'queue = "sms"') + GOOD
    )
    base = facts([], [], NOW)
    assert decide(rules, base, "sms", "return_status").rule == "sms-status"
    assert decide(rules, base, "chat", "return_status").rule == "rest"


def test_every_fact_can_be_read_by_a_rule() -> None:
    samples = {bool: "{} == true", int: "{} >= 0", str: '{} != "x"'}
    text = "".join(
        rule(f"r{i}", samples[f.type].format(f.name), 'continue = true\ntags = ["t"]')
        for i, f in enumerate(FACTS)
    )
    assert len(parse_rules(text + GOOD).rules) == len(FACTS) + 2


def test_rules_error_carries_every_problem() -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(rule("a", "nope") + rule("b", "vip >"), source="x.toml")
    assert [p.name for p in caught.value.problems] == ["a", "b"]
    assert caught.value.details["problems"][0]["position"] == 1


def test_a_condition_never_true_on_the_samples_is_a_warning(tmp_path: Path) -> None:
    code, out, err = check(tmp_path, rule("text-seven", 'refund_pending_days == "7"') + GOOD)
    assert code == 0 and "3 rules" in out
    flat = " ".join(err.split())
    assert "warning: " in flat and 'rule 1 "text-seven"' in flat and "false for every" in flat
    assert load_rules().warnings == ()
