"""The command line, run in-process: results on stdout, problems on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopdesk.cli.main import app
from tests.conftest import CONFORMANCE, CONTRACT_EXAMPLE

runner = CliRunner()


@pytest.fixture(autouse=True)
def _sandbox_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("LOOPDESK_LOOP_API_TOKEN", "LOOPDESK_SANDBOX_DATA", "LOOPDESK_SANDBOX_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray loopdesk.toml


def test_lookup_json_contract() -> None:
    result = runner.invoke(app, ["lookup", "primary@email.com", "secondary@email.com", "--json"])
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert set(body) == {"returns", "orders", "facts", "meta"}
    assert body["returns"] and body["orders"]
    stamps = [r["updatedAt"] for r in body["returns"]]
    assert stamps == sorted(stamps, reverse=True)
    assert "sandbox" in result.stderr


def test_lookup_readable_layout() -> None:
    result = runner.invoke(app, ["lookup", "primary@email.com"])
    assert result.exit_code == 0, result.stderr
    assert "Returns (" in result.stdout and "Orders (" in result.stdout
    assert "Label" in result.stdout


def test_lookup_with_contract_example_file() -> None:
    example = CONTRACT_EXAMPLE
    result = runner.invoke(
        app, ["lookup", "primary@email.com", "--json", "--sandbox-data", str(example)]
    )
    assert result.exit_code == 0, result.stderr
    ids = {r["id"] for r in json.loads(result.stdout)["returns"]}
    raw = json.loads(example.read_text())
    # the example's dates are fixed: only returns inside the 365-day window come back
    assert ids <= {r["id"] for r in raw["returns"]}


def test_lookup_bad_input_exits_nonzero_with_empty_stdout() -> None:
    result = runner.invoke(app, ["lookup", "not-an-email", "--json"])
    assert result.exit_code != 0
    assert result.stdout == ""
    assert "not an email address" in result.stderr


def test_broken_sandbox_file_fails_with_path_and_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"returns": "nope"}')
    result = runner.invoke(app, ["lookup", "a@b.co", "--sandbox-data", str(bad)])
    assert result.exit_code != 0 and result.stdout == ""
    assert str(bad) in result.stderr.replace("\n", "")


def test_normalize_returns_from_conformance_file() -> None:
    raw = CONFORMANCE / "loop_returns/data/pull/returns/_test_/data/rawData.json"
    result = runner.invoke(app, ["normalize", "returns", str(raw), "--email", "primary@email.com"])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert [r["outcome"] for r in out] == ["Credit"]
    assert "notes" not in out[0]
    none = runner.invoke(app, ["normalize", "returns", str(raw), "--email", "x@y.co"])
    assert json.loads(none.stdout) == []


def test_normalize_notes_and_orders_from_stdin() -> None:
    notes = '[{"id": 7, "content": "hi", "created_at": "2023-04-17 22:56:54"}]'
    result = runner.invoke(app, ["normalize", "notes", "--return-id", "25"], input=notes)
    assert json.loads(result.stdout) == [
        {"id": "7", "returnId": "25", "content": "hi", "createdAt": "2023-04-17T22:56:54Z"}
    ]
    orders = '{"data": {"orders": [{"name": "#1", "shipments": []}]}}'
    result = runner.invoke(app, ["normalize", "orders"], input=orders)
    assert json.loads(result.stdout)[0]["shipmentUrl"].endswith("order_name=%231")


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["normalize", "returns"], "{not json", "not JSON"),
        (["normalize", "returns"], '{"status": "success"}', "returns body"),
        (["normalize", "notes"], "[]", "--return-id"),
        (["normalize", "returns", "/nonexistent/file.json"], "", "cannot read"),
    ],
)
def test_normalize_errors(args: list[str], stdin: str, message: str) -> None:
    result = runner.invoke(app, args, input=stdin)
    assert result.exit_code != 0
    assert result.stdout == ""
    assert message in result.stderr


def test_return_link_and_refusal() -> None:
    ok = runner.invoke(app, ["return-link", "#1086", "primary@email.com"])
    assert ok.exit_code == 0, ok.stderr
    assert ok.stdout.startswith("https://") and "/#/link/" in ok.stdout
    refused = runner.invoke(app, ["return-link", "#1086", "00000"])
    assert refused.exit_code != 0 and refused.stdout == ""
    assert "unable to execute action" in refused.stderr
    missing = runner.invoke(app, ["return-link", "#1086", " "])
    assert missing.exit_code != 0 and "required" in missing.stderr


def test_allowlist_add() -> None:
    result = runner.invoke(app, ["allowlist", "add", "email", "jane@example.com"])
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["type"] == "email" and body["value"] == "jane@example.com"
    assert isinstance(body["id"], str) and body["id"]
    bad = runner.invoke(app, ["allowlist", "add", "colour", "blue"])
    assert bad.exit_code == 2 and bad.stdout == ""
    import sqlite3

    with sqlite3.connect("loopdesk.db") as conn:  # audited like the service's actions
        rows = conn.execute("SELECT key_name, action, ok FROM audit_log").fetchall()
    assert rows == [("cli", "allowlist.add", 1)]


def test_keys_create_prints_the_key_alone_and_revoke() -> None:
    created = runner.invoke(app, ["keys", "create", "console"])
    assert created.exit_code == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("ld_") and created.stdout == key + "\n"
    duplicate = runner.invoke(app, ["keys", "create", "console"])
    assert duplicate.exit_code != 0 and duplicate.stdout == ""
    assert runner.invoke(app, ["keys", "revoke", "console"]).exit_code == 0
    missing = runner.invoke(app, ["keys", "revoke", "console"])
    assert missing.exit_code != 0 and "no active API key" in missing.stderr
    assert Path("loopdesk.db").is_file()
    assert key.encode() not in Path("loopdesk.db").read_bytes()


def test_db_upgrade_and_webhooks_replay() -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    replay = runner.invoke(app, ["webhooks", "replay"])
    assert replay.exit_code == 0, replay.stderr
    assert json.loads(replay.stdout) == {}


def test_sync_backfills_the_store() -> None:
    from datetime import UTC, datetime, timedelta

    since = (datetime.now(UTC) - timedelta(days=200)).date().isoformat()
    result = runner.invoke(app, ["sync", "--since", since])
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["returns"] > 0 and body["pages"] >= 1 and body["resumed"] is False
    bad = runner.invoke(app, ["sync", "--since", "last tuesday"])
    assert bad.exit_code == 2 and bad.stdout == ""
