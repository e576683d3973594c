"""No secret and no full customer email in a running service's output.

A real `loopdesk serve` (its own process, on a free port) answers every route in
`CASES`, error paths included (bad JSON, bad signatures, unknown returns, a database
error forced by hiding a table, Loop failing through the sandbox's faults), once in
sandbox mode and once with a Loop token pointed at a `loopdesk sandbox` process. Its
whole standard output and error is then searched for the API keys, the webhook
secrets, the Loop tokens and any unmasked email address.

To cover a new route or error path, add a `Case` to `CASES`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from bench.server import free_port

from loopdesk.gladly.reroute import SECRET_HEADER
from loopdesk.gladly.signing import TIME_FORMAT, authorization_header
from loopdesk.sandbox.seed import DEMO_EMAILS, DEMO_ORDER_NAMES, DEMO_ZIP, generate_world
from loopdesk.settings import Settings
from tests.reports import Report

ENV_API_KEY = "env-api-key-Zq8v1T0pKx"
WEBHOOK_SECRETS = ("whsec-old-4Fh2kLm9Qa", "whsec-new-8Rt3pWn6Yb")
LOOP_TOKEN = "fake-loop-token-7Gd2Jx5Vq1"
TRACKING_TOKEN = "fake-tracking-token-3Hs8Kc1Zm4"
GLADLY_SIGNING_KEY = "gladly-signing-key-9Wc4Np7Rd2"
GLADLY_WEBHOOK_SECRET = "gladly-webhook-secret-5Lm8Tq3Vz6"
GLADLY_SECRETS = (GLADLY_SIGNING_KEY, GLADLY_WEBHOOK_SECRET)
# A customer email that only ever travels inside request and webhook bodies.
WEBHOOK_EMAIL = "dana.quill@example.com"
ALLOWLIST_EMAIL = "marco.vesper@example.org"
# Any address whose local part is not masked (`j***@example.com` is masked).
UNMASKED_EMAIL = re.compile(r"[A-Za-z0-9._+\-]+(?:@|%40)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")

_world = generate_world(Settings().sandbox_seed, Settings().sandbox_customers)
OPEN_RETURNS = [rid for rid, r in _world.returns.items() if r.get("state") == "open"]
KNOWN_RETURN = next(iter(_world.returns))


def _gladly_lookup(level: str = "DETAILED") -> bytes:
    query = {"emails": list(DEMO_EMAILS), "name": "Demo Customer"}
    return json.dumps({"lookupLevel": level, "query": query, "uniqueMatchRequired": True}).encode()


@dataclass(frozen=True)
class Case:
    """One request to the service, and what it must answer (any status in `expect`)."""

    name: str
    method: str
    path: str
    json: Any = None
    content: bytes | None = None
    auth: str | None = "key"  # "key", "env", a literal header value, or None
    headers: dict[str, str] = field(default_factory=dict)
    sign_with: str | None = None  # a secret: sign `content` as Loop does
    gladly_sign: bool = False  # sign `content` with Gladly's signing key, as Gladly does
    expect: range = range(200, 300)
    fault: dict[str, Any] | None = None  # injected in the sandbox for this request only
    hide_table: str | None = None  # a table renamed away meanwhile: a database error
    sandbox_mode_only: bool = False


def _event(**fields: Any) -> bytes:
    base = {
        "topic": "return",
        "trigger": "return.updated",
        "id": OPEN_RETURNS[3],
        "state": "open",
        "customer": WEBHOOK_EMAIL,
        "customer_detail": {"email": WEBHOOK_EMAIL, "first_name": "Dana"},
        "created_at": "2026-11-01T10:00:00+00:00",
        "updated_at": "2026-11-20T10:00:00+00:00",
    }
    return json.dumps({**base, **fields}).encode()


LOOKUP = "/v1/customers/lookup?email={}&email={}".format(*DEMO_EMAILS)
OK = range(200, 300)
CLIENT_ERROR = range(400, 500)
ANY = range(200, 600)

CASES: list[Case] = [
    # operations
    Case("health", "GET", "/healthz", auth=None),
    Case("ready", "GET", "/readyz", auth=None),
    Case("metrics", "GET", "/metrics", auth=None),
    Case("openapi", "GET", "/openapi.json", auth=None),
    Case("unknown route", "GET", "/nope", auth=None, expect=CLIENT_ERROR),
    # lookups
    Case("lookup", "GET", LOOKUP),
    Case("lookup env key", "GET", LOOKUP, auth="env"),
    Case("lookup fresh", "GET", LOOKUP, headers={"Cache-Control": "no-cache"}),
    Case("lookup no key", "GET", LOOKUP, auth=None, expect=CLIENT_ERROR),
    Case("lookup bad key", "GET", LOOKUP, auth="Bearer ld_wrongwrongwrong", expect=CLIENT_ERROR),
    Case("lookup bad email", "GET", "/v1/customers/lookup?email=nobody", expect=CLIENT_ERROR),
    Case("lookup profile", "POST", "/v1/customers/lookup", json={"emails": list(DEMO_EMAILS)}),
    Case(
        "lookup profile bad JSON",
        "POST",
        "/v1/customers/lookup",
        content=b'{"emails": ["primary@email.com",',
        headers={"Content-Type": "application/json"},
        expect=CLIENT_ERROR,
    ),
    Case(
        "lookup Loop 500",
        "GET",
        LOOKUP,
        headers={"Cache-Control": "no-cache"},
        fault={"path_contains": "/api/v2/returns", "status": 500},
        expect=ANY,
    ),
    Case(
        "lookup Loop 429",
        "GET",
        LOOKUP,
        headers={"Cache-Control": "no-cache"},
        fault={"path_contains": "/api/v2/returns", "status": 429},
        expect=ANY,
    ),
    Case(
        "lookup tracking malformed",
        "GET",
        LOOKUP,
        headers={"Cache-Control": "no-cache"},
        fault={"path_contains": "/graphql", "malformed": True},
        expect=ANY,
    ),
    Case(
        "lookup Loop 401",
        "GET",
        LOOKUP,
        headers={"Cache-Control": "no-cache"},
        fault={"path_contains": "/api/", "status": 401},
        expect=ANY,
    ),
    # actions
    Case(
        "return link",
        "POST",
        "/v1/actions/return-link",
        json={"orderName": DEMO_ORDER_NAMES[0], "zip": DEMO_ZIP},
        expect=ANY,
    ),
    Case(
        "return link by email",
        "POST",
        "/v1/actions/return-link",
        json={"orderName": DEMO_ORDER_NAMES[0], "zip": DEMO_EMAILS[0]},
        expect=ANY,
    ),
    Case("return link missing", "POST", "/v1/actions/return-link", json={}, expect=CLIENT_ERROR),
    Case(
        "return link unknown order",
        "POST",
        "/v1/actions/return-link",
        json={"orderName": "#999999", "zip": "00000"},
        expect=CLIENT_ERROR,
    ),
    Case(
        "allowlist email",
        "POST",
        "/v1/actions/allowlist",
        json={"type": "email", "value": ALLOWLIST_EMAIL},
    ),
    Case(
        "allowlist bad type",
        "POST",
        "/v1/actions/allowlist",
        json={"type": "planet", "value": "x"},
        expect=CLIENT_ERROR,
    ),
    Case(
        "allowlist Loop 503",
        "POST",
        "/v1/actions/allowlist",
        json={"type": "email", "value": "x" + ALLOWLIST_EMAIL},
        fault={"path_contains": "/allowlists", "status": 503},
        expect=ANY,
    ),
    Case(
        "allowlist audit DB error",
        "POST",
        "/v1/actions/allowlist",
        json={"type": "email", "value": "y" + ALLOWLIST_EMAIL},
        hide_table="audit_log",
        expect=ANY,
    ),
    Case("allowlist delete unknown", "DELETE", "/v1/actions/allowlist/999999", expect=ANY),
    Case(
        "note",
        "POST",
        f"/v1/returns/{OPEN_RETURNS[0]}/notes",
        json={"content": f"customer {WEBHOOK_EMAIL} called"},
    ),
    Case(
        "note unknown return",
        "POST",
        "/v1/returns/999999999/notes",
        json={"content": "x"},
        expect=CLIENT_ERROR,
    ),
    Case("note empty", "POST", f"/v1/returns/{KNOWN_RETURN}/notes", json={}, expect=CLIENT_ERROR),
    Case("close", "POST", f"/v1/returns/{OPEN_RETURNS[1]}/close", expect=ANY),
    Case("close again", "POST", f"/v1/returns/{OPEN_RETURNS[1]}/close", expect=ANY),
    Case("process unknown", "POST", "/v1/returns/999999999/process", expect=CLIENT_ERROR),
    Case("bad action", "POST", f"/v1/returns/{KNOWN_RETURN}/explode", expect=CLIENT_ERROR),
    Case(
        "flag idempotent",
        "POST",
        f"/v1/returns/{OPEN_RETURNS[2]}/flag",
        headers={"Idempotency-Key": "flag-once"},
        expect=ANY,
    ),
    # draft returns (the sandbox's first draft id is 900123456)
    Case(
        "draft start", "POST", "/v1/drafts", json={"orderName": "#7104", "secondaryInput": "98101"}
    ),
    Case(
        "draft start by email",
        "POST",
        "/v1/drafts",
        json={"orderName": "#7101", "secondaryInput": "refund.demo@example.com"},
    ),
    Case("draft get", "GET", "/v1/drafts/900123456", expect=ANY),
    Case("draft unknown", "GET", "/v1/drafts/1", expect=CLIENT_ERROR),
    Case("draft submit not offered", "POST", "/v1/drafts/900123456/submit", expect=CLIENT_ERROR),
    Case(
        "draft item Loop 500",
        "POST",
        "/v1/drafts/900123456/items",
        json={"orderLineItemId": "7104002"},
        fault={"path_contains": "/returning-items", "status": 500},
        expect=ANY,
    ),
    Case("drafts", "GET", "/v1/drafts"),
    Case("return details none", "GET", "/v1/returns/details", expect=CLIENT_ERROR),
    # audit
    Case("audit", "GET", "/v1/audit"),
    Case("audit filtered", "GET", "/v1/audit?action=allowlist.add&since=2026-01-01T00:00:00Z"),
    Case("audit bad since", "GET", "/v1/audit?since=yesterday", expect=CLIENT_ERROR),
    # routing
    Case(
        "route",
        "POST",
        "/v1/routing/decide",
        json={"customer": {"emails": list(DEMO_EMAILS)}, "channel": "chat"},
    ),
    Case(
        "route bad email",
        "POST",
        "/v1/routing/decide",
        json={"customer": {"emails": ["not an address"]}, "channel": "chat"},
        expect=CLIENT_ERROR,
    ),
    Case("decisions", "GET", "/v1/routing/decisions"),
    Case("decisions bad queue", "GET", "/v1/routing/decisions?queue=a%00b", expect=CLIENT_ERROR),
    # what the Gladly app's actions call
    Case("returns status", "GET", LOOKUP.replace("/v1/customers/lookup", "/v1/returns/status")),
    Case("returns status bad", "GET", "/v1/returns/status?email=nobody", expect=CLIENT_ERROR),
    Case(
        "exception request",
        "POST",
        "/v1/exceptions/requests",
        json={"emails": list(DEMO_EMAILS), "orderName": "#1086", "attributes": {"tags": ["VIP"]}},
        expect=ANY,
    ),
    Case(
        "exception request bad",
        "POST",
        "/v1/exceptions/requests",
        json={"emails": ["not an address"], "orderName": "#1086"},
        expect=CLIENT_ERROR,
    ),
    # Gladly's Lookup Adaptor and webhooks
    Case(
        "gladly lookup",
        "POST",
        "/gladly/lookup",
        content=_gladly_lookup(),
        auth=None,
        gladly_sign=True,
    ),
    Case(
        "gladly lookup basic",
        "POST",
        "/gladly/lookup",
        content=_gladly_lookup("BASIC"),
        auth=None,
        gladly_sign=True,
    ),
    Case(
        "gladly lookup unsigned",
        "POST",
        "/gladly/lookup",
        content=_gladly_lookup(),
        auth=None,
        expect=CLIENT_ERROR,
    ),
    Case(
        "gladly lookup bad signature",
        "POST",
        "/gladly/lookup",
        content=_gladly_lookup(),
        auth=None,
        headers={
            "Gladly-Time": "20261201T000000Z",
            "Gladly-Authorization": "SigningAlgorithm=hmac-sha256, SignedHeaders=gladly-time, "
            "Signature=" + "0" * 64,
        },
        expect=CLIENT_ERROR,
    ),
    Case(
        "gladly webhook",
        "POST",
        "/webhooks/gladly",
        content=json.dumps({"id": "ping-1", "type": "PING"}).encode(),
        auth=None,
        headers={SECRET_HEADER: GLADLY_WEBHOOK_SECRET},
        expect=ANY,
    ),
    Case(
        "gladly webhook wrong secret",
        "POST",
        "/webhooks/gladly",
        content=json.dumps({"id": "ping-2", "type": "PING"}).encode(),
        auth=None,
        headers={SECRET_HEADER: "not-the-secret"},
        expect=CLIENT_ERROR,
    ),
    # Loop's webhooks
    Case("webhook", "POST", "/webhooks/loop", content=_event(), sign_with="new"),
    Case(
        "webhook old secret",
        "POST",
        "/webhooks/loop",
        content=_event(updated_at="2026-11-21T10:00:00+00:00"),
        sign_with="old",
    ),
    Case(
        "webhook bad signature",
        "POST",
        "/webhooks/loop",
        content=_event(),
        headers={"X-Loop-Signature": "bm90LXRoZS1zaWduYXR1cmU="},
        expect=CLIENT_ERROR,
    ),
    Case("webhook unsigned", "POST", "/webhooks/loop", content=_event(), expect=CLIENT_ERROR),
    Case(
        "webhook bad JSON",
        "POST",
        "/webhooks/loop",
        content=b'{"topic": "return", "customer": "' + WEBHOOK_EMAIL.encode(),
        sign_with="new",
        expect=ANY,
    ),
    Case(
        "webhook label unknown return",
        "POST",
        "/webhooks/loop",
        content=json.dumps(
            {
                "topic": "label",
                "trigger": "label.updated",
                "return_id": "999999999",
                "label_status": "in_transit",
                "label_updated_at": "2026-11-20T10:00:00+00:00",
            }
        ).encode(),
        sign_with="new",
        expect=ANY,
    ),
    Case(
        "webhook DB error",
        "POST",
        "/webhooks/loop",
        content=_event(updated_at="2026-11-22T10:00:00+00:00"),
        sign_with="new",
        hide_table="webhook_events",
        expect=ANY,
    ),
    Case(
        "lookup DB error",
        "GET",
        LOOKUP,
        headers={"Cache-Control": "no-cache"},
        hide_table="returns",
        expect=ANY,
    ),
    # the mounted sandbox
    Case(
        "sandbox control no key",
        "GET",
        "/sandbox/_sandbox/faults",
        auth=None,
        expect=CLIENT_ERROR,
        sandbox_mode_only=True,
    ),
    Case("sandbox control", "GET", "/sandbox/_sandbox/faults", sandbox_mode_only=True),
]


@dataclass
class Service:
    url: str
    control: str  # the sandbox's /_sandbox base
    control_headers: dict[str, str]
    database: Path
    output: Path
    api_key: str
    secrets: list[str]
    statuses: dict[str, int] = field(default_factory=dict)


def _gladly_headers(path: str, body: bytes) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Gladly-Time": datetime.now(UTC).strftime(TIME_FORMAT),
    }
    headers["Gladly-Authorization"] = authorization_header(
        GLADLY_SIGNING_KEY, "POST", path, headers, body
    )
    return headers


def _sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@contextmanager
def _process(args: list[str], env: dict[str, str], cwd: Path, out: Path) -> Iterator[None]:
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loopdesk", *args],
            env=env,
            cwd=cwd,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPDESK_")}
    return env | {
        "LOOPDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/service.db",
        "LOOPDESK_LOG_LEVEL": "INFO",
        "LOOPDESK_API_KEY": ENV_API_KEY,
        "LOOPDESK_LOOP_WEBHOOK_SECRET": ",".join(WEBHOOK_SECRETS),
        "LOOPDESK_GLADLY_SIGNING_KEY": GLADLY_SIGNING_KEY,
        "LOOPDESK_GLADLY_WEBHOOK_SECRET": GLADLY_WEBHOOK_SECRET,
        "LOOPDESK_SANDBOX_RATE_LIMIT_PER_MINUTE": "0",
        "LOOPDESK_LOOKUP_TTL_S": "0",
        "LOOPDESK_LOOKUP_MEMORY_S": "0",
        "LOOPDESK_HTTP_RETRY_ATTEMPTS": "2",
        "LOOPDESK_HTTP_READ_TIMEOUT_S": "3",
        # A run of Loop's 429s is waited out for a minute by default: a few seconds here.
        "LOOPDESK_LOOP_RATE_LIMIT_BACKOFF_S": "0.2",
        "LOOPDESK_LOOP_RATE_LIMIT_MAX_WAIT_S": "2",
    }


def _create_key(env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "loopdesk", "keys", "create", "log-test"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


@contextmanager
def _serve(tmp_path: Path, env: dict[str, str]) -> Iterator[tuple[str, str]]:
    key = _create_key(env, tmp_path)
    port = free_port()
    out = tmp_path / "service.log"
    with _process(["serve", "--port", str(port)], env, tmp_path, out):
        url = f"http://127.0.0.1:{port}"
        _wait(f"{url}/healthz", out)
        yield url, key


def _wait(url: str, out: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up: {out.read_text()[-2000:]}")


@pytest.fixture
def sandbox_mode(tmp_path: Path) -> Iterator[Service]:
    env = _base_env(tmp_path)
    with _serve(tmp_path, env) as (url, key):
        yield Service(
            url=url,
            control=f"{url}/sandbox/_sandbox",
            control_headers={"Authorization": f"Bearer {key}"},
            database=tmp_path / "service.db",
            output=tmp_path / "service.log",
            api_key=key,
            secrets=[key, ENV_API_KEY, *WEBHOOK_SECRETS, *GLADLY_SECRETS],
        )


@pytest.fixture
def loop_token_mode(tmp_path: Path) -> Iterator[Service]:
    sandbox_port = free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    sandbox_env = _base_env(tmp_path) | {"LOOPDESK_SANDBOX_TOKEN": LOOP_TOKEN}
    sandbox_out = tmp_path / "sandbox.log"
    with _process(["sandbox", "--port", str(sandbox_port)], sandbox_env, tmp_path, sandbox_out):
        _wait(f"{sandbox_url}/_sandbox/health", sandbox_out)
        env = _base_env(tmp_path) | {
            "LOOPDESK_LOOP_API_TOKEN": LOOP_TOKEN,
            "LOOPDESK_LOOP_BASE_URL": sandbox_url,
            # The standalone sandbox takes one token for both of its APIs.
            "LOOPDESK_ORDER_TRACKING_TOKEN": LOOP_TOKEN,
            "LOOPDESK_ORDER_TRACKING_BASE_URL": sandbox_url,
        }
        with _serve(tmp_path, env) as (url, key):
            # the sandbox's own webhooks go to the service, signed with the newer secret
            hook = {"url": f"{url}/webhooks/loop", "secret": WEBHOOK_SECRETS[1], "base_delay": 0}
            assert httpx.post(f"{sandbox_url}/_sandbox/webhooks", json=hook).status_code == 201
            yield Service(
                url=url,
                control=f"{sandbox_url}/_sandbox",
                control_headers={},
                database=tmp_path / "service.db",
                output=tmp_path / "service.log",
                api_key=key,
                secrets=[
                    key,
                    ENV_API_KEY,
                    *WEBHOOK_SECRETS,
                    *GLADLY_SECRETS,
                    LOOP_TOKEN,
                    TRACKING_TOKEN,
                ],
            )


@contextmanager
def _hidden(database: Path, table: str | None) -> Iterator[None]:
    if table is None:
        yield
        return
    with sqlite3.connect(database, timeout=10) as db:
        db.execute(f"ALTER TABLE {table} RENAME TO {table}_hidden")
    try:
        yield
    finally:
        with sqlite3.connect(database, timeout=10) as db:
            db.execute(f"ALTER TABLE {table}_hidden RENAME TO {table}")


def _run(service: Service, case: Case, *, sandbox_mode: bool) -> None:
    if case.sandbox_mode_only and not sandbox_mode:
        return
    headers = dict(case.headers)
    if case.auth == "key":
        headers["Authorization"] = f"Bearer {service.api_key}"
    elif case.auth == "env":
        headers["Authorization"] = f"Bearer {ENV_API_KEY}"
    elif case.auth is not None:
        headers["Authorization"] = case.auth
    if case.sign_with is not None and case.content is not None:
        secret = WEBHOOK_SECRETS[0] if case.sign_with == "old" else WEBHOOK_SECRETS[1]
        headers["X-Loop-Signature"] = _sign(case.content, secret)
    if case.gladly_sign and case.content is not None:
        headers |= _gladly_headers(case.path, case.content)
    if case.fault is not None:
        added = httpx.post(
            f"{service.control}/faults", json=case.fault, headers=service.control_headers
        )
        assert added.status_code == 201, added.text
    try:
        with _hidden(service.database, case.hide_table):
            response = httpx.request(
                case.method,
                service.url + case.path,
                json=case.json,
                content=case.content,
                headers=headers,
                timeout=30,
            )
    finally:
        if case.fault is not None:
            httpx.delete(f"{service.control}/faults", headers=service.control_headers)
    service.statuses[case.name] = response.status_code
    assert response.status_code in case.expect, (case.name, response.status_code, response.text)
    for secret in service.secrets:
        assert secret not in response.text, (case.name, "secret in a response")


def _check_output(service: Service, mode: str) -> tuple[int, list[str]]:
    text = service.output.read_text(errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    found = [f"secret #{n}" for n, s in enumerate(service.secrets) if s in text]
    found += sorted({m.group(0) for m in UNMASKED_EMAIL.finditer(text)})
    return len(lines), found


def _exercise(service: Service, mode: str, report: Report) -> None:
    for case in CASES:
        _run(service, case, sandbox_mode=mode == "sandbox")
    time.sleep(1.0)  # the sandbox's webhooks after the actions reach the service
    lines, found = _check_output(service, mode)
    report(
        f"[log secrets, {mode} mode] routes exercised: {len(service.statuses)}, "
        f"log lines checked: {lines}, secrets found: {len(found)}"
    )
    assert lines >= len(service.statuses) // 2, "the service logged almost nothing"
    assert found == [], f"found in the service's output: {found}"


def test_sandbox_mode_logs_no_secret(sandbox_mode: Service, report: Report) -> None:
    _exercise(sandbox_mode, "sandbox", report)
    # the forced database errors did happen (and were logged, redacted)
    log = sandbox_mode.output.read_text()
    assert "[parameters: [redacted]]" in log
    assert sandbox_mode.statuses["webhook"] == 200


def test_loop_token_mode_logs_no_secret(loop_token_mode: Service, report: Report) -> None:
    _exercise(loop_token_mode, "Loop token", report)
    assert "[parameters: [redacted]]" in loop_token_mode.output.read_text()


def test_serve_mints_no_key(tmp_path: Path) -> None:
    env = _base_env(tmp_path)
    del env["LOOPDESK_API_KEY"]
    port = free_port()
    out = tmp_path / "service.log"
    with _process(["serve", "--port", str(port)], env, tmp_path, out):
        _wait(f"http://127.0.0.1:{port}/healthz", out)
    text = out.read_text()
    assert "ld_" not in text
    assert "loopdesk keys create" in text  # says how to get one instead
    with sqlite3.connect(tmp_path / "service.db") as db:
        assert db.execute("SELECT count(*) FROM api_keys").fetchone() == (0,)
