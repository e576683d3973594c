"""`loopdesk route`, `loopdesk routing report` and `serve`'s start-up check, against the
sandbox with a world whose dates are relative to now."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopdesk.cli.main import app
from tests.test_routing_api import routing_world

runner = CliRunner()


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in (
        "LOOPDESK_LOOP_API_TOKEN",
        "LOOPDESK_SANDBOX_TOKEN",
        "LOOPDESK_RULES_FILE",
        "LOOPDESK_POLICY_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray loopdesk.toml
    world = routing_world(tmp_path / "world.json")
    monkeypatch.setenv("LOOPDESK_SANDBOX_DATA", str(world))
    monkeypatch.setenv("LOOPDESK_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cli.db")
    return world


def test_route_json_contract() -> None:
    result = runner.invoke(app, ["route", "jane@example.com", "--json", "--channel", "email"])
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert {"queue", "priority", "rule", "tags", "facts", "trace"} <= set(body)
    assert (body["queue"], body["rule"]) == ("returns-priority", "refund-waiting-a-week")
    assert body["priority"] == 90 and body["facts"]["refund_pending_days"] == 9
    assert body["channel"] == "email"
    assert "sandbox" in result.stderr


def test_route_plain_and_explained() -> None:
    plain = runner.invoke(app, ["route", "olga@example.com"])
    assert plain.exit_code == 0, plain.stderr
    assert plain.stdout.startswith("returns  priority 50  rule open-return")
    wide = {"COLUMNS": "200"}  # rule names on one line each
    explained = runner.invoke(app, ["route", "sam@example.com", "--explain"], env=wide)
    assert explained.exit_code == 0, explained.stderr
    text = explained.stdout
    for words in ("refund-waiting-a-week", "no match", "shipment-problem", "matched"):
        assert words in text
    assert "not evaluated" in text  # the catch-all after the match
    assert "shipment_problem = true" in text
    assert "-> orders (priority 50) by shipment-problem" in text


def test_route_json_with_explain_keeps_stdout_json() -> None:
    result = runner.invoke(app, ["route", "nia@example.com", "--json", "--explain"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["rule"] == "everything-else"
    assert "everything-else" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["route", "not-an-email"],
        ["route", "jane@example.com", "--channel", "chat room"],
        ["route", "jane@example.com", "--intent", "what?"],
    ],
)
def test_route_bad_input_exits_nonzero_with_empty_stdout(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "error" in result.stderr


def test_route_with_a_bad_rules_file_names_the_rule(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rule]]\nname = "all"\ncondition = "true"\nqueue = "general"\n\n'
        '[[rule]]\nname = "never"\ncondition = "vip"\nqueue = "vip"\n'
    )
    monkeypatch.setenv("LOOPDESK_RULES_FILE", str(rules))
    result = runner.invoke(app, ["route", "jane@example.com", "--json"])
    assert result.exit_code == 1 and result.stdout == ""
    assert 'rule 2 "never"' in result.stderr and "unreachable" in result.stderr


def test_serve_refuses_a_bad_rules_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "syntax"\ncondition = "vip &&"\nqueue = "x"\n')
    monkeypatch.setenv("LOOPDESK_RULES_FILE", str(rules))
    result = runner.invoke(app, ["serve", "--port", "1"])  # fails before listening
    assert result.exit_code == 1
    flat = " ".join(result.stderr.split())
    assert 'rules.toml:1: rule 1 "syntax": syntax error' in flat


def test_serve_refuses_a_bad_policy_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[vip]\ntags = "VIP"\n')
    monkeypatch.setenv("LOOPDESK_POLICY_FILE", str(policy))
    result = runner.invoke(app, ["serve", "--port", "1"])
    assert result.exit_code == 1
    assert "vip.tags" in result.stderr


def test_policy_file_vip_emails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[vip]\nemails = ["OLGA@example.com"]\n\n[exceptions]\ngrace_days = 5\n')
    monkeypatch.setenv("LOOPDESK_POLICY_FILE", str(policy))
    result = runner.invoke(app, ["route", "olga@example.com", "--json"])
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["facts"]["vip"] is True and body["tags"][0] == "vip"


def test_routing_report_counts_by_queue_and_rule() -> None:
    since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    for email in ("jane@example.com", "olga@example.com", "olga@example.com", "sam@example.com"):
        assert runner.invoke(app, ["route", email, "--json"]).exit_code == 0
    result = runner.invoke(app, ["routing", "report", "--since", since, "--json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["total"] == 4
    assert report["byQueue"] == {"returns": 2, "orders": 1, "returns-priority": 1}
    assert report["byRule"] == {"open-return": 2, "refund-waiting-a-week": 1, "shipment-problem": 1}
    assert report["byQueueAndRule"][0] == {"queue": "returns", "rule": "open-return", "count": 2}

    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    none = runner.invoke(app, ["routing", "report", "--since", later, "--json"])
    assert json.loads(none.stdout)["total"] == 0
    window = runner.invoke(app, ["routing", "report", "--since", "2020-01-01", "--until", since])
    assert window.exit_code == 0 and "0 decisions" in window.stdout

    table = runner.invoke(app, ["routing", "report", "--since", since])
    assert table.exit_code == 0 and "open-return" in table.stdout and "4 decisions" in table.stdout


@pytest.mark.parametrize("since", ["last week", "0001-01-01T00:00:00+01:01"])
def test_routing_report_bad_since(since: str) -> None:
    result = runner.invoke(app, ["routing", "report", "--since", since])
    assert result.exit_code == 2 and result.stdout == ""
    assert "--since" in result.stderr
