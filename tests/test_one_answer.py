"""One answer whatever the source: the same bounds from Loop and from the store, the CLI
through the same service as the API, and an explicit word when nothing is known."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from loopdesk.api.app import create_app
from loopdesk.cli.main import app as cli
from loopdesk.customers.backfill import backfill
from loopdesk.sandbox.seed import demo_emails
from loopdesk.settings import Settings

KEY = "one-answer-api-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
PER_EMAIL = 2  # the demo customer has 4 returns per address: the bound bites
SEVEN = [*demo_emails(), *(f"extra{i}@example.com" for i in range(5))]

pytestmark = pytest.mark.usefixtures("instant_retries")


BOUNDS = {
    "returns per address": {"lookup_returns_per_email": PER_EMAIL},
    "days": {"lookup_returns_days": 30},  # the demo customer has returns on both sides
    "orders": {"lookup_max_orders": 1},
}


@pytest.fixture
async def api(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    bounds = getattr(request, "param", BOUNDS["returns per address"])
    settings = Settings(
        api_key=KEY,
        sandbox_rate_limit_per_minute=0,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/one.db",
        http_connect_timeout_s=0.2,
        http_read_timeout_s=0.5,
        **bounds,
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield app, client


async def _lookup(client: httpx.AsyncClient, *emails: str) -> dict[str, Any]:
    response = await client.get(
        "/v1/customers/lookup", params=[("email", e) for e in emails], headers=AUTH
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _per_address(body: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ret in body["returns"]:
        email = ret["customerEmail"].lower()
        counts[email] = counts.get(email, 0) + 1
    return counts


# --- the HTTP API --------------------------------------------------------------------------


@pytest.mark.parametrize("api", list(BOUNDS.values()), ids=list(BOUNDS), indirect=True)
async def test_store_answers_with_loops_bounds_after_a_sync(
    api: tuple[Any, httpx.AsyncClient],
) -> None:
    app, client = api
    from_loop = await _lookup(client, *demo_emails())
    assert from_loop["meta"]["source"] == "sandbox"
    options = app.state.customers.options
    assert max(_per_address(from_loop).values()) <= options.returns_per_email
    oldest = datetime.now(UTC) - timedelta(days=options.returns_days)
    assert all(datetime.fromisoformat(r["updatedAt"]) >= oldest for r in from_loop["returns"])
    assert len(from_loop["orders"]) <= options.max_orders
    # A sync stores every return of the window, more than a lookup asks for.
    result = await backfill(
        app.state.store, app.state.upstream.returns, since=datetime.now(UTC) - timedelta(days=400)
    )
    assert result.returns > len(from_loop["returns"])
    app.state.customers.invalidate()
    from_store = await _lookup(client, *demo_emails())
    assert from_store["meta"]["source"] == "store"
    assert [r["id"] for r in from_store["returns"]] == [r["id"] for r in from_loop["returns"]]
    assert from_store["returns"] == from_loop["returns"]
    assert from_store["orders"] == from_loop["orders"]


async def test_never_fetched_customer_while_loop_fails_says_nothing_was_fetched(
    api: tuple[Any, httpx.AsyncClient],
) -> None:
    app, client = api
    app.state.upstream.sandbox.state.faults.add("/api/", status=503)
    body = await _lookup(client, "never.seen@example.com")
    meta = body["meta"]
    assert body["returns"] == [] and meta["source"] == "store" and meta["stale"] is True
    assert "asOf" not in meta
    nothing = [e for e in meta["errors"] if e["code"] == "nothing_fetched"]
    assert len(nothing) == 1 and nothing[0]["source"] == "lookup"
    assert "nothing could be fetched" in nothing[0]["message"]
    assert any(e["source"] == "returns" for e in meta["errors"])


async def test_known_customer_while_loop_fails_is_stale_without_nothing_fetched(
    api: tuple[Any, httpx.AsyncClient], tmp_path: Path
) -> None:
    app, client = api
    first = await _lookup(client, *demo_emails())
    app.state.upstream.sandbox.state.faults.add("/api/", status=503)
    again = (
        await client.get(
            "/v1/customers/lookup",
            params=[("email", e) for e in demo_emails()],
            headers={**AUTH, "Cache-Control": "no-cache"},
        )
    ).json()
    assert again["meta"]["stale"] is True and again["meta"]["asOf"]
    assert not [e for e in again["meta"]["errors"] if e["code"] == "nothing_fetched"]
    assert [r["id"] for r in again["returns"]] == [r["id"] for r in first["returns"]]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_addresses_past_the_fifth_are_dropped_with_a_notice(
    api: tuple[Any, httpx.AsyncClient], method: str
) -> None:
    app, client = api
    if method == "GET":
        body = await _lookup(client, *SEVEN)
    else:
        response = await client.post(
            "/v1/customers/lookup",
            json={"primaryEmailAddress": SEVEN[0], "emailAddresses": SEVEN[1:]},
            headers=AUTH,
        )
        assert response.status_code == 200, response.text
        body = response.json()
    meta = body["meta"]
    assert meta["emails"] == SEVEN[:5]
    assert meta["droppedEmails"] == SEVEN[5:]
    assert any("first 5" in n and "2 more" in n for n in meta["notices"])
    log = app.state.upstream.sandbox.state.faults.request_log
    asked = {line[2] for line in log if "/api/v2/returns" in line[1]}
    assert not any("extra3" in q or "extra4" in q for q in asked)  # never sent to Loop
    # Served from the store the second time, still saying so.
    again = await _lookup(client, *SEVEN)
    assert again["meta"]["source"] == "store"
    assert again["meta"]["droppedEmails"] == SEVEN[5:]


async def test_five_or_fewer_addresses_have_no_notice(api: tuple[Any, httpx.AsyncClient]) -> None:
    _, client = api
    meta = (await _lookup(client, *demo_emails()))["meta"]
    assert meta["droppedEmails"] == [] and meta["notices"] == []


# --- the command line --------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("LOOPDESK_LOOP_API_TOKEN", "LOOPDESK_SANDBOX_DATA", "LOOPDESK_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOOPDESK_LOOKUP_RETURNS_PER_EMAIL", str(PER_EMAIL))
    monkeypatch.setenv("LOOPDESK_SANDBOX_RATE_LIMIT_PER_MINUTE", "0")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _cli_lookup(*args: str) -> dict[str, Any]:
    result = runner.invoke(cli, ["lookup", *args, "--json"])
    assert result.exit_code == 0, result.stderr
    body: dict[str, Any] = json.loads(result.stdout)
    return body


def test_cli_lookup_uses_the_store_and_its_freshness(cli_env: Path) -> None:
    first = _cli_lookup(*demo_emails())
    assert first["meta"]["source"] == "sandbox"
    assert (cli_env / "loopdesk.db").is_file()
    second = _cli_lookup(*demo_emails())
    assert second["meta"]["source"] == "store"
    assert second["returns"] == first["returns"] and second["orders"] == first["orders"]
    fresh = _cli_lookup(*demo_emails(), "--fresh")
    assert fresh["meta"]["source"] == "sandbox"


def test_cli_store_answer_has_loops_bound_after_sync(cli_env: Path) -> None:
    from_loop = _cli_lookup(*demo_emails())
    assert max(_per_address(from_loop).values()) == PER_EMAIL
    since = (datetime.now(UTC) - timedelta(days=400)).date().isoformat()
    synced = runner.invoke(cli, ["sync", "--since", since])
    assert synced.exit_code == 0, synced.stderr
    assert json.loads(synced.stdout)["returns"] > len(from_loop["returns"])
    from_store = _cli_lookup(*demo_emails())
    assert from_store["meta"]["source"] == "store"
    assert from_store["returns"] == from_loop["returns"]


def test_cli_and_api_answer_alike(cli_env: Path) -> None:
    body = _cli_lookup(*SEVEN)
    assert body["meta"]["emails"] == SEVEN[:5] and body["meta"]["droppedEmails"] == SEVEN[5:]
    readable = runner.invoke(cli, ["lookup", *SEVEN])
    assert readable.exit_code == 0, readable.stderr
    assert "first 5 addresses" in readable.stdout and "extra4@example.com" in readable.stdout


def test_cli_never_fetched_customer_while_loop_fails(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Loop that refuses connections: every request fails at once.
    monkeypatch.setenv("LOOPDESK_LOOP_API_TOKEN", "token-for-an-unreachable-loop")
    monkeypatch.setenv("LOOPDESK_LOOP_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("LOOPDESK_HTTP_CONNECT_TIMEOUT_S", "0.2")
    body = _cli_lookup("never.seen@example.com")
    assert body["returns"] == [] and body["meta"]["stale"] is True
    assert [e["code"] for e in body["meta"]["errors"] if e["source"] == "lookup"] == [
        "nothing_fetched"
    ]
    readable = runner.invoke(cli, ["lookup", "never.seen@example.com"])
    assert readable.exit_code == 0
    assert "nothing could be fetched" in readable.stdout.replace("\n", " ")


@pytest.mark.parametrize("api", [{"lookup_memory_s": 0}], ids=["no memory cache"], indirect=True)
async def test_a_field_shown_blank_still_counts_as_a_complete_fetch(
    api: tuple[Any, httpx.AsyncClient],
) -> None:
    """A bad field is named in `meta.errors` and shown blank; the fetch is complete, so
    the next lookup within the TTL is the store's answer, not another trip to Loop."""
    app, client = api
    sandbox = app.state.upstream.sandbox.state
    mine = [r for r in sandbox.world.returns.values() if r["customer"] in demo_emails()]
    newest = max(mine, key=lambda r: r["updated_at"])
    newest["refund"] = "N/A"
    body = await _lookup(client, *demo_emails())
    assert [(e["source"], e["returnId"]) for e in body["meta"]["errors"]] == [
        ("fields", str(newest["id"]))
    ]
    assert body["meta"]["stale"] is False
    before = sum(sandbox.faults.request_counts().values())
    again = await _lookup(client, *demo_emails())
    assert sum(sandbox.faults.request_counts().values()) == before  # no upstream call
    assert again["meta"]["source"] == "store"
