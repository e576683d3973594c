"""Bad input is a 4xx in the error shape, never a 500, on SQLite and PostgreSQL; a path
id that is not a Loop id is a 422 and never reaches Loop; the CLI says so and exits
non-zero without a stack trace."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from loopdesk.api.app import create_app
from loopdesk.cli.main import app as cli
from loopdesk.sandbox.seed import demo_emails
from loopdesk.settings import Settings
from tests import reports
from tests.reports import Report
from tests.test_store import PG_SKIP, PgServer

KEY = "bad-input-api-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
DEEP = "[" * 100_000  # deeper than any JSON parser's recursion limit
LONG_EMAIL = "a" * 321 + "@example.com"
NUL_EMAIL = "jane\x00@example.com"

# (method, path, query or JSON body, raw body): each must be refused before Loop.
Case = tuple[str, str, Any, str | bytes | None]
BODY_CASES: list[Case] = [
    ("GET", "/v1/customers/lookup", [("email", NUL_EMAIL)], None),
    ("GET", "/v1/customers/lookup", [("email", LONG_EMAIL)], None),
    ("GET", "/v1/customers/lookup", [("email", "two words@example.com")], None),
    # 205 characters that lower-case (the stored form) to 405
    ("GET", "/v1/customers/lookup", [("email", "\u0130" * 200 + "@x.co")], None),
    ("GET", "/v1/customers/lookup", [("email", f"u{i}@example.com") for i in range(101)], None),
    ("POST", "/v1/customers/lookup", {"emails": [NUL_EMAIL]}, None),
    ("POST", "/v1/customers/lookup", {"emailAddresses": [LONG_EMAIL]}, None),
    ("POST", "/v1/customers/lookup", {"primaryEmailAddress": "\ud800@example.com"}, None),
    ("POST", "/v1/customers/lookup", {"emails": "jane@example.com"}, None),
    ("POST", "/v1/customers/lookup", None, DEEP),
    ("POST", "/v1/customers/lookup", None, '{"emails": ' + DEEP),
    ("POST", "/v1/customers/lookup", None, b"\xff\xfe{}"),  # not UTF-8
    ("POST", "/v1/actions/return-link", None, DEEP),
    ("POST", "/v1/actions/return-link", {"orderName": "#1086\x00", "zip": "43215"}, None),
    ("POST", "/v1/actions/return-link", {"orderName": "#1086", "zip": "4" * 400}, None),
    ("POST", "/v1/actions/return-link", {"orderName": "#1086", "zip": "\udfff"}, None),
    ("POST", "/v1/actions/allowlist", None, DEEP),
    ("POST", "/v1/actions/allowlist", {"type": "email", "value": NUL_EMAIL}, None),
    ("POST", "/v1/actions/allowlist", {"type": "email", "value": "x" * 501}, None),
    ("POST", "/v1/returns/{id}/notes", None, DEEP),
    ("POST", "/v1/returns/{id}/notes", {"content": "refund sent\x00"}, None),
    ("POST", "/v1/returns/{id}/notes", {"content": "\ud83d"}, None),
    ("POST", "/v1/returns/{id}/notes", {"content": "n" * 256}, None),
    ("POST", "/v1/returns/{id}/notes", {"content": "   "}, None),
]
BAD_IDS = [
    "%2e%2e",
    ".%2e",
    "%2E%2E%2F%2E%2E",
    "1%2F..%2F..",
    "abc",
    "-1",
    "1.5",
    "1e3",
    "%20",
    "12345678901234567890",  # 20 digits: past a 64-bit id
    "%00",
]
ID_PATHS = ["/v1/returns/{id}/process", "/v1/returns/{id}/notes", "/v1/actions/allowlist/{id}"]


class PgDatabases:
    def __init__(self) -> None:
        self.server = PgServer()
        self.reachable = True


@pytest.fixture(scope="module")
def pg() -> Iterator[PgDatabases]:
    dbs = PgDatabases()
    try:
        asyncio.run(dbs.server.create_database())
    except Exception:  # unreachable: the PostgreSQL half is skipped, saying so
        dbs.reachable = False
    yield dbs
    if dbs.server.created:
        asyncio.run(dbs.server.drop_all())


@pytest.fixture(params=["sqlite", "postgresql"])
async def service(
    request: pytest.FixtureRequest, tmp_path: Path, pg: PgDatabases
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/bad.db"
    else:
        if not pg.reachable:
            pytest.skip(PG_SKIP)
        url = await pg.server.create_database()
    settings = Settings(api_key=KEY, sandbox_rate_limit_per_minute=0, database_url=url)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        yield app, client


def _db(app: Any) -> str:
    return str(app.state.settings.database_url).split("+")[0]


def _loop_calls(app: Any) -> int:
    return len(app.state.upstream.sandbox.state.faults.request_log)


async def _send(
    client: httpx.AsyncClient, method: str, path: str, data: Any, raw: str | bytes | None
) -> httpx.Response:
    if method == "GET":
        return await client.get(path, params=data, headers=AUTH)
    headers = {**AUTH, "Content-Type": "application/json"}
    if raw is not None:
        content = raw if isinstance(raw, bytes) else raw.encode()
        return await client.request(method, path, content=content, headers=headers)
    body = json.dumps(data)  # ASCII escapes: lone surrogates and NUL travel as \\uXXXX
    return await client.request(method, path, content=body, headers=headers)


def _assert_error_shape(response: httpx.Response, context: str) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, f"{context}: {response.status_code} {response.text}"
    error = response.json()["error"]
    assert isinstance(error["code"], str) and error["message"], context
    assert isinstance(error["details"], dict), context
    assert "Traceback" not in response.text
    return error


async def test_bad_bodies_and_queries_are_4xx_and_never_reach_loop(
    service: tuple[Any, httpx.AsyncClient], report: Report
) -> None:
    app, client = service
    found = await client.get(
        "/v1/customers/lookup", params=[("email", demo_emails()[0])], headers=AUTH
    )
    return_id = found.json()["returns"][0]["id"]
    before = _loop_calls(app)
    for method, path, data, raw in BODY_CASES:
        target = path.replace("{id}", return_id)
        response = await _send(client, method, target, data, raw)
        _assert_error_shape(response, f"{method} {target} {str(data)[:60]!r}")
    assert _loop_calls(app) == before, "a refused request reached Loop"
    # The store is still fine afterwards (a failed statement did not poison it).
    again = await client.get(
        "/v1/customers/lookup", params=[("email", demo_emails()[0])], headers=AUTH
    )
    assert again.status_code == 200
    report(f"[bad input] {_db(app)}: HTTP bodies/queries tried: {len(BODY_CASES)}, 5xx: 0")


async def test_path_ids_that_are_not_loop_ids_are_422_and_never_reach_loop(
    service: tuple[Any, httpx.AsyncClient], report: Report
) -> None:
    app, client = service
    before = _loop_calls(app)
    tried = 0
    for template in ID_PATHS:
        for bad in BAD_IDS:
            path = template.replace("{id}", bad)
            method = "DELETE" if "allowlist" in path else "POST"
            body = {"content": "hello"} if path.endswith("/notes") else None
            response = await client.request(method, path, json=body, headers=AUTH)
            error = _assert_error_shape(response, f"{method} {path}")
            assert response.status_code == 422, f"{method} {path}: {response.status_code}"
            assert error["code"] == "invalid_input"
            tried += 1
    assert _loop_calls(app) == before
    assert not any(
        "/warehouse/process" in line[1] and "/return/" not in line[1]
        for line in app.state.upstream.sandbox.state.faults.request_log
    )
    report(f"[bad input] {_db(app)}: path ids tried: {tried}, 5xx: 0, reached Loop: 0")


async def test_a_good_loop_id_still_reaches_loop(service: tuple[Any, httpx.AsyncClient]) -> None:
    app, client = service
    found = await client.get(
        "/v1/customers/lookup", params=[("email", demo_emails()[0])], headers=AUTH
    )
    return_id = found.json()["returns"][0]["id"]
    response = await client.post(
        f"/v1/returns/{return_id}/notes", json={"content": "line one\nline two"}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "returnId": return_id,
        "content": "line one\nline two",
        "added": True,
    }
    log = app.state.upstream.sandbox.state.faults.request_log
    assert any(line[1] == f"/api/v1/warehouse/return/{return_id}/note" for line in log)


# --- the command line --------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def _cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("LOOPDESK_LOOP_API_TOKEN", "LOOPDESK_SANDBOX_DATA", "LOOPDESK_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


CLI_CASES = [
    (["lookup", NUL_EMAIL], "control characters"),
    (["lookup", LONG_EMAIL, "--json"], "at most 320"),
    (["lookup", "primary@email.com", "not-an-email"], "not an email address"),
    (["allowlist", "delete", ".."], "Loop id"),
    (["allowlist", "delete", "%2e%2e"], "Loop id"),
    (["allowlist", "delete", "12/../3"], "Loop id"),
    (["allowlist", "delete", "abc"], "Loop id"),
]


@pytest.mark.usefixtures("_cli_env")
def test_cli_bad_emails_and_ids_are_a_message_and_nonzero_exit(
    report: Report,
) -> None:
    for args, message in CLI_CASES:
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, (args, result.exit_code, result.stderr)
        assert result.stdout == ""
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert result.exception is None or isinstance(result.exception, SystemExit)
    report(f"[bad input] CLI arguments tried: {len(CLI_CASES)}, stack traces: 0")


# --- any text at all ------------------------------------------------------------------------

ANY_TEXT = st.one_of(
    st.text(max_size=400),
    st.text(st.characters(max_codepoint=0x7F), max_size=40).map(lambda t: f"{t}\x00@x.co"),
    st.text(st.characters(categories=["Cs", "Cc"]), min_size=1, max_size=4),  # surrogates
    # addresses that grow when lower-cased ("\u0130" becomes two characters)
    st.text(st.sampled_from("\u0130a"), min_size=150, max_size=310).map(lambda t: f"{t}@x.co"),
)
HTTP_TRIED: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_random_texts(pytestconfig: pytest.Config) -> Iterator[None]:
    yield
    reports.add(
        pytestconfig,
        reports.FIGURES,
        [
            f"[bad input] {name}: random texts sent through 5 fields: {n}, 5xx: 0"
            for name, n in sorted(HTTP_TRIED.items())
        ],
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(email=ANY_TEXT, content=ANY_TEXT, order=ANY_TEXT)
async def test_any_text_in_any_field_is_never_a_5xx(
    service: tuple[Any, httpx.AsyncClient], email: str, content: str, order: str
) -> None:
    app, client = service
    answers = [
        # Percent-encoded as raw bytes, as a careless client would (surrogates included).
        await client.get(
            "/v1/customers/lookup?email=" + quote(email, safe="", errors="surrogatepass"),
            headers=AUTH,
        ),
        await _send(client, "POST", "/v1/customers/lookup", {"emails": [email]}, None),
        await _send(client, "POST", "/v1/returns/25044000/notes", {"content": content}, None),
        await _send(
            client, "POST", "/v1/actions/return-link", {"orderName": order, "zip": content}, None
        ),
        await _send(
            client, "POST", "/v1/actions/allowlist", {"type": "email", "value": email}, None
        ),
    ]
    for response in answers:
        assert response.status_code < 500, (response.request.url, response.text)
        if response.status_code >= 400:
            _assert_error_shape(response, str(response.request.url))
    name = _db(app)
    HTTP_TRIED[name] = HTTP_TRIED.get(name, 0) + len(answers)
