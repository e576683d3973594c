"""The intent classifier: held-out accuracy per intent, how often it would ask, and the
`loopdesk guide classify` contract."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
from typer.testing import CliRunner

from loopdesk.cli.main import app
from loopdesk.guides.classifier import (
    CLARIFY_BELOW,
    INTENTS,
    Classifier,
    held_out_report,
    load_examples,
    split,
)
from tests.reports import Report

runner = CliRunner()


def test_labelled_set_is_large_balanced_and_unique() -> None:
    examples = load_examples()
    assert len(examples) >= 420
    counts = Counter(e.intent for e in examples)
    assert set(counts) == set(INTENTS)
    assert max(counts.values()) <= 1.5 * min(counts.values()), counts
    assert len({e.text.strip().lower() for e in examples}) == len(examples)


def test_held_out_fifth_is_fixed_disjoint_and_per_intent() -> None:
    examples = load_examples()
    training, held = split(examples)
    assert split(list(reversed(examples)))[1] == list(reversed(held))  # order does not matter
    assert not {e.text for e in training} & {e.text for e in held}
    for intent in INTENTS:
        mine = [e for e in examples if e.intent == intent]
        assert sum(e.intent == intent for e in held) == len(mine) // 5


def test_held_out_accuracy_per_intent(report: Report) -> None:
    held = held_out_report()
    report(f"[intents] held-out fifth, model trained on the rest\n{held.table()}")
    assert held.accuracy >= 0.95
    for intent, (right, total) in held.per_intent.items():
        assert total and right / total >= 0.95, intent
    # asking is for the unsure cases: rare overall, and most mistakes are asked about
    assert held.asked / held.total <= 0.15
    wrong = held.total - sum(right for right, _ in held.per_intent.values())
    assert held.wrong_but_asked >= wrong / 2


def test_training_is_deterministic() -> None:
    training, held = split(load_examples())
    texts = [e.text for e in held]
    assert Classifier(training).classify(texts) == Classifier(training).classify(texts)


def test_low_confidence_asks() -> None:
    training, _ = split(load_examples())
    results = Classifier(training).classify(["hmm", "where is my order 1086 and my refund"])
    for result in results:
        assert result.intent in INTENTS
        assert 0.0 <= result.confidence <= 1.0
        assert result.clarify == (result.confidence < CLARIFY_BELOW)


def test_cli_classifies_each_line_in_order() -> None:
    lines = [
        {"text": "wheres my refund?? sent it back 2 wks ago"},
        {"text": "can I talk to a human"},
        {"text": "¿dónde está mi pedido 1086?"},
    ]
    stdin = "".join(json.dumps(line) + "\n" for line in lines)
    result = runner.invoke(app, ["guide", "classify"], input=stdin)
    assert result.exit_code == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["intent"] for o in out] == ["return_status", "agent", "order_status"]
    for o in out:
        assert isinstance(o["confidence"], float) and 0 <= o["confidence"] <= 1
        assert o["clarify"] == (o["confidence"] < CLARIFY_BELOW)


def test_cli_empty_input_gives_empty_output() -> None:
    result = runner.invoke(app, ["guide", "classify"], input="")
    assert result.exit_code == 0
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("not json", "line 2: not JSON"),
        ('{"txt": "hi"}', 'line 2: expected an object with "text"'),
        ('["hi"]', 'line 2: expected an object with "text"'),
        ('{"text": 42}', 'line 2: "text" must be a string'),
        ('{"text": null}', 'line 2: "text" must be a string'),
        ("[" * 100_000, "line 2: not JSON"),
    ],
)
def test_cli_bad_line_fails_with_nothing_on_stdout(bad: str, message: str) -> None:
    stdin = '{"text": "where is my order"}\n' + bad + '\n{"text": "hi"}\n'
    result = runner.invoke(app, ["guide", "classify"], input=stdin)
    assert result.exit_code != 0
    assert result.stdout == ""
    assert message in result.stderr


def test_cli_refuses_input_that_is_not_utf8() -> None:
    result = runner.invoke(app, ["guide", "classify"], input=b'{"text": "caf\xe9"}\n')
    assert result.exit_code != 0
    assert result.stdout == ""
    assert "not UTF-8" in result.stderr


def test_cli_runs_as_a_program() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "loopdesk", "guide", "classify"],
        input='{"text": "how do i send ths back"}\n',
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["intent"] == "start_return"
