"""The console's pages without a browser: sign-in and its cookie, CSRF, no key in any
page or URL, the pages of the sandbox's customers, actions behind their confirmation,
the chat, and the formatting of money and times."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from loopdesk import store as db
from loopdesk.api.app import create_app
from loopdesk.domain.money import money
from loopdesk.sandbox.seed import DEMO_EMAILS, EXCEPTION_PERSONAS
from loopdesk.settings import Settings
from loopdesk.web.format import ago_text, when
from loopdesk.web.routes import customer_audit, parse_emails
from loopdesk.web.session import COOKIE, MAX_AGE_S, Session, SessionCodec

KEY = "test-console-env-key-0123456789"
BASE = "http://desk.test"
SAME_SITE = {"Origin": BASE}
DEMO = " ".join(DEMO_EMAILS)


@dataclass
class Console:
    app: FastAPI
    client: httpx.AsyncClient

    async def csrf(self) -> str:
        """The CSRF token of this client's session (from the page's forms)."""
        page = await self.client.get("/")
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found, page.text
        return found.group(1)

    async def sign_in(self, key: str = KEY) -> httpx.Response:
        token = await self.csrf()
        return await self.client.post(
            "/console/sign-in", data={"csrf": token, "key": key}, headers=SAME_SITE
        )

    async def post(self, path: str, data: dict[str, str], **headers: str) -> httpx.Response:
        token = await self.csrf()
        return await self.client.post(
            path, data={"csrf": token, **data}, headers={**SAME_SITE, **headers}
        )

    async def audit(self) -> list[dict[str, Any]]:
        response = await self.client.get("/v1/audit", headers={"Authorization": f"Bearer {KEY}"})
        items: list[dict[str, Any]] = response.json()["items"]
        return items


def _settings(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        api_key=KEY,
        api_key_cache_s=0,
        sandbox_rate_limit_per_minute=0,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/console.db",
        **extra,
    )


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    app = create_app(_settings(tmp_path, console_secret="a-console-secret"))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client,
    ):
        yield Console(app, client)


def _cookie_header(response: httpx.Response) -> str:
    (header,) = [h for h in response.headers.get_list("set-cookie") if h.startswith(COOKIE)]
    return header


# --- sign-in and the session cookie --------------------------------------------------


async def test_signed_out_visitors_get_the_sign_in_page_and_a_strict_cookie(
    console: Console,
) -> None:
    response = await console.client.get("/")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert 'name="key"' in response.text and 'type="password"' in response.text
    header = _cookie_header(response).lower()
    assert "httponly" in header and "samesite=strict" in header and "path=/" in header
    assert "max-age" not in header and "expires" not in header  # ends with the browser session
    assert "secure" not in header  # plain http here; https sets it (below)
    async with httpx.AsyncClient(transport=console.client._transport) as other:
        secure = await other.get("https://desk.test/")
    assert "secure" in _cookie_header(secure).lower()


async def test_a_valid_key_signs_in_and_the_cookie_never_holds_it(console: Console) -> None:
    response = await console.sign_in()
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = console.client.cookies[COOKIE]
    assert KEY not in cookie
    padded = cookie + "=" * (-len(cookie) % 4)
    assert KEY.encode() not in base64.urlsafe_b64decode(padded)  # encrypted, not just encoded
    page = await console.client.get("/")
    assert "Signed in as <strong>env</strong>" in page.text
    assert KEY not in page.text


async def test_a_wrong_key_is_refused_with_a_message(console: Console) -> None:
    for key in ("nope", "ld_" + "x" * 43, "", "k" * 600):
        response = await console.sign_in(key)
        assert response.status_code == 401
        assert "not a valid loopdesk API key" in response.text
        assert "Signed in as" not in (await console.client.get("/")).text


async def test_a_stored_key_signs_in_under_its_name_and_revoking_it_signs_out(
    console: Console,
) -> None:
    store: db.Store = console.app.state.store
    async with store.session() as session:
        key = await db.create_api_key(session, "agent-ann")
    assert (await console.sign_in(key)).status_code == 303
    page = await console.client.get("/", params={"emails": DEMO})
    assert "Signed in as <strong>agent-ann</strong>" in page.text and "Returns</h2>" in page.text
    async with store.session() as session:
        assert await db.revoke_api_key(session, "agent-ann")
    after = await console.client.get("/", params={"emails": DEMO})
    assert after.status_code == 303 and after.headers["location"] == "/?signed_out=key"
    again = await console.client.get("/?signed_out=key")
    assert "stopped working" in again.text and 'name="key"' in again.text


async def test_sign_in_needs_the_sessions_csrf_token_and_the_same_site(console: Console) -> None:
    token = await console.csrf()
    cases = [
        ({"key": KEY}, SAME_SITE),  # no token
        ({"key": KEY, "csrf": "forged"}, SAME_SITE),
        ({"key": KEY, "csrf": token}, {"Origin": "https://evil.example"}),
        ({"key": KEY, "csrf": token}, {"Origin": "null"}),
        ({"key": KEY, "csrf": token}, {"Sec-Fetch-Site": "cross-site"}),
    ]
    for data, headers in cases:
        response = await console.client.post("/console/sign-in", data=data, headers=headers)
        assert response.status_code == 403, (data, headers)
        assert "expired or was sent from another site" in response.text
    fresh = httpx.AsyncClient(transport=console.client._transport, base_url=BASE)
    async with fresh:  # another browser's token is worth nothing in this one
        response = await fresh.post("/console/sign-in", data={"key": KEY, "csrf": token})
        assert response.status_code == 403


async def test_signing_in_gives_a_new_csrf_token_and_signing_out_ends_the_session(
    console: Console,
) -> None:
    before = await console.csrf()
    await console.sign_in()
    after = await console.csrf()
    assert after != before
    refused = await console.client.post("/console/sign-out", data={"csrf": before})
    assert refused.status_code == 403
    out = await console.client.post("/console/sign-out", data={"csrf": after}, headers=SAME_SITE)
    assert out.status_code == 303
    assert 'name="key"' in (await console.client.get("/")).text


async def test_a_tampered_or_foreign_cookie_is_a_signed_out_visitor(
    console: Console, tmp_path: Path
) -> None:
    await console.sign_in()
    cookie = console.client.cookies[COOKIE]
    flipped = cookie[:-5] + ("A" if cookie[-5] != "A" else "B") + cookie[-4:]
    console.client.cookies.set(COOKIE, flipped, domain="desk.test")
    assert 'name="key"' in (await console.client.get("/")).text
    # The same session sealed under another secret (another deployment) opens as nothing.
    other = SessionCodec("another-secret")
    assert SessionCodec("a-console-secret").open(other.seal(Session.new())) is None
    sealed = SessionCodec("a-console-secret").seal(Session.new().signed_in_as(KEY, "env"))
    assert SessionCodec("a-console-secret").open(sealed) is not None
    assert SessionCodec(None).open(sealed) is None  # no secret: a random one per process


def test_a_session_expires_after_a_working_day(monkeypatch: pytest.MonkeyPatch) -> None:
    import cryptography.fernet

    codec = SessionCodec("s")
    sealed = codec.seal(Session.new().signed_in_as(KEY, "env"))
    later = datetime.now(UTC) + timedelta(seconds=MAX_AGE_S + 60)
    monkeypatch.setattr(cryptography.fernet.time, "time", later.timestamp)
    assert codec.open(sealed) is None


# --- pages -------------------------------------------------------------------------------


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.assets: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.assets.append(str(values["src"]))
        if tag == "link" and values.get("href"):
            self.assets.append(str(values["href"]))
        for name in ("href", "action", "hx-get", "hx-post"):
            if values.get(name):
                self.links.append(str(values[name]))


async def _lookup(console: Console, emails: list[str]) -> dict[str, Any]:
    response = await console.client.get(
        "/v1/customers/lookup",
        params=[("email", e) for e in emails],
        headers={"Authorization": f"Bearer {KEY}"},
    )
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    "emails",
    [list(DEMO_EMAILS), *([p.email] for p in EXCEPTION_PERSONAS), ["nobody@example.com"]],
)
async def test_pages_render_every_sandbox_customer_from_the_api(
    console: Console, emails: list[str]
) -> None:
    await console.sign_in()
    page = await console.client.get("/", params={"emails": " ".join(emails)})
    assert page.status_code == 200
    data = await _lookup(console, emails)
    count = len(data["returns"])
    assert f"{count} Return{'' if count == 1 else 's'}</h2>" in page.text
    assert f"{len(data['orders'])} Order" in page.text
    for ret in data["returns"]:
        assert f'id="return-{ret["id"]}"' in page.text
        assert ret["url"] in page.text  # the link to the return in Loop's admin
        for amount in (ret["return"]["total"], ret["costBreakdown"]["refund"]):
            assert money(amount, ret["currency"]) in page.text
    for order in data["orders"]:
        for shipment in order["shipments"]:
            assert shipment["trackingCode"] in page.text
    assert 'id="routing"' in page.text and "Trace</h3>" in page.text
    assert KEY not in page.text
    for header, value in {
        "cache-control": "no-store",
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
    }.items():
        assert page.headers[header] == value
    assert "script-src 'self'" in page.headers["content-security-policy"]
    parsed = _Assets()
    parsed.feed(page.text)
    # Every asset from loopdesk itself (no CDN); every form and link to loopdesk or Loop.
    assert parsed.assets and all(
        a.startswith("/console/static/") or a == "data:," for a in parsed.assets
    )
    for link in parsed.links:
        assert KEY not in link
        assert link.startswith(("/", "#", "https://")) or link == "data:,", link


async def test_the_demo_customer_shows_every_card(console: Console) -> None:
    await console.sign_in()
    page = (await console.client.get("/", params={"emails": DEMO})).text
    data = await _lookup(console, list(DEMO_EMAILS))
    assert "Out of stock" in page  # an exchange out of stock
    assert ">Expired</span>" in page  # an expired return
    assert data["facts"]["refund_pending_days"] >= 7
    assert re.search(
        r'data-fact="refund_pending_days"[^>]*>\s*' + str(data["facts"]["refund_pending_days"]),
        page,
    )
    assert "returns-priority" in page
    assert "Last fetched from the sandbox" in page and "ago" in page
    notes = [n["content"] for r in data["returns"] for n in r["notes"]]
    assert notes and all(n.replace("'", "&#39;") in page for n in notes)


async def test_the_search_page_offers_the_sandbox_showcases_including_a_stalled_shipment(
    console: Console,
) -> None:
    await console.sign_in()
    page = (await console.client.get("/")).text
    assert "Sandbox customers to try" in page and "a stalled shipment" in page
    stalled = re.search(r'<a href="/\?emails=([^"]+)">[^<]+</a>: a stalled shipment', page)
    assert stalled
    customer = await console.client.get("/?emails=" + stalled.group(1))
    assert 'data-status="SHIPMENT_STALLED"' in customer.text
    assert 'data-fact="shipment_problem" class="on">true' in customer.text


async def test_a_stale_lookup_is_marked(console: Console, instant_retries: None) -> None:
    await console.sign_in()
    await console.client.get("/", params={"emails": DEMO})  # stored once
    fault = await console.client.post(
        "/sandbox/_sandbox/faults",
        json={"path_contains": "/api/v2/returns", "status": 500},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert fault.status_code < 300, fault.text
    page = await console.client.get("/", params={"emails": DEMO, "fresh": "1"})
    assert 'class="badge stale">Stale' in page.text
    assert "Loop did not answer in full" in page.text
    assert "loop_unavailable" in page.text or "loop_" in page.text


async def test_bad_emails_show_the_apis_error(console: Console) -> None:
    await console.sign_in()
    page = await console.client.get("/", params={"emails": "not-an-email"})
    assert page.status_code == 200
    assert 'role="alert"' in page.text and "invalid_input" in page.text


async def test_signed_out_requests_go_to_sign_in(console: Console) -> None:
    page = await console.client.get("/", params={"emails": DEMO})
    assert 'name="key"' in page.text and "Returns</h2>" not in page.text
    token = await console.csrf()
    for path in ("/console/chat", "/console/actions/run", "/console/routing"):
        response = await console.client.post(path, data={"csrf": token}, headers=SAME_SITE)
        assert response.status_code == 303 and response.headers["location"] == "/"
        htmx = await console.client.post(
            path, data={"csrf": token}, headers={**SAME_SITE, "HX-Request": "true"}
        )
        assert htmx.status_code == 401 and htmx.headers["hx-redirect"] == "/"


async def test_the_console_leaves_the_api_and_docs_where_they_were(console: Console) -> None:
    assert (await console.client.get("/healthz")).json() == {"status": "ok"}
    assert (await console.client.get("/docs")).status_code == 200
    schema = (await console.client.get("/openapi.json")).json()
    assert not [p for p in schema["paths"] if p == "/" or p.startswith("/console")]
    assert (await console.client.get("/v1/audit")).status_code == 401
    htmx = await console.client.get("/console/static/htmx.min.js")
    assert htmx.status_code == 200 and "Zero-Clause BSD" in htmx.text[:800]
    assert (await console.client.get("/console/static/console.css")).status_code == 200


# --- actions, routing, chat ----------------------------------------------------------


async def _first_return(console: Console) -> dict[str, Any]:
    data = await _lookup(console, list(DEMO_EMAILS))
    first: dict[str, Any] = data["returns"][0]
    return first


async def test_an_action_is_confirmed_first_then_run_once_and_audited(console: Console) -> None:
    await console.sign_in()
    ret = await _first_return(console)
    fields = {
        "kind": "note",
        "return_id": ret["id"],
        "content": "Called the customer",
        "emails": DEMO,
    }
    confirm = await console.post("/console/actions/confirm", fields, **{"HX-Request": "true"})
    assert confirm.status_code == 200
    assert f"Add a note to return {ret['id']}" in confirm.text and "<html" not in confirm.text
    assert await console.audit() == []  # nothing ran yet
    idem = re.search(r'name="idempotency_key" value="([^"]+)"', confirm.text)
    assert idem
    run = {**fields, "idempotency_key": idem.group(1)}
    done = await console.post("/console/actions/run", run, **{"HX-Request": "true"})
    assert done.status_code == 200 and "Done:" in done.text
    assert done.headers["hx-trigger"] == "audit-changed"
    again = await console.post("/console/actions/run", run, **{"HX-Request": "true"})
    assert again.status_code == 200  # a second click replays the first answer
    rows = await console.audit()
    assert [(r["action"], r["key"], r["inputs"]["returnId"]) for r in rows] == [
        ("note.add", "env", ret["id"])
    ]
    audit = await console.client.get("/console/audit", params={"emails": DEMO})
    assert 'data-audit="note.add"' in audit.text and "Called the customer" in audit.text


async def test_actions_need_the_csrf_token(console: Console) -> None:
    await console.sign_in()
    ret = await _first_return(console)
    fields = {"kind": "flag", "return_id": ret["id"], "idempotency_key": "k1", "emails": DEMO}
    no_token = await console.client.post("/console/actions/run", data=fields, headers=SAME_SITE)
    assert no_token.status_code == 403
    cross = await console.client.post(
        "/console/actions/run",
        data={**fields, "csrf": await console.csrf()},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    assert await console.audit() == []
    # htmx sends the token as a header (hx-headers on <body>) as well as in the form.
    header = await console.client.post(
        "/console/actions/run",
        data=fields,
        headers={**SAME_SITE, "X-CSRF-Token": await console.csrf(), "HX-Request": "true"},
    )
    assert header.status_code == 200 and "Done:" in header.text
    assert [r["action"] for r in await console.audit()] == ["return.flag"]


async def test_a_refused_action_shows_loops_error_and_is_audited(console: Console) -> None:
    await console.sign_in()
    fields = {
        "kind": "return-link",
        "order_name": "#1086",
        "zip": "00000",
        "idempotency_key": "wrong-zip",
        "emails": DEMO,
    }
    response = await console.post("/console/actions/run", fields)
    assert response.status_code >= 400
    assert 'role="alert"' in response.text and "Not done" in response.text
    assert "<html" in response.text and "Back to the customer" in response.text  # no htmx
    assert [r["ok"] for r in await console.audit()] == [False]


async def test_a_return_link_is_shown_with_the_url_loop_made(console: Console) -> None:
    await console.sign_in()
    fields = {
        "kind": "return-link",
        "order_name": "#1086",
        "zip": "43215",
        "idempotency_key": "good-zip",
        "emails": DEMO,
    }
    response = await console.post("/console/actions/run", fields, **{"HX-Request": "true"})
    link = re.search(r'href="([^"]+)"[^>]*data-field="return-link"', response.text)
    assert link and link.group(1).startswith("https://")
    assert [(r["action"], r["ok"]) for r in await console.audit()] == [("return-link", True)]


async def test_an_unknown_action_is_refused(console: Console) -> None:
    await console.sign_in()
    response = await console.post("/console/actions/confirm", {"kind": "delete-everything"})
    assert response.status_code == 422 and "does not know that action" in response.text


async def test_routing_is_decided_again_for_a_channel_and_intent(console: Console) -> None:
    await console.sign_in()
    response = await console.post(
        "/console/routing",
        {"emails": DEMO, "channel": "sms", "intent": "order_status"},
        **{"HX-Request": "true"},
    )
    assert response.status_code == 200 and 'id="routing"' in response.text
    assert "channel sms" in response.text and "intent order_status" in response.text
    assert '<option value="sms" selected>' in response.text


async def test_a_chat_turn_goes_to_the_guide_as_this_customer(console: Console) -> None:
    await console.sign_in()
    fields = {
        "emails": DEMO,
        "conversation": "console-test-1",
        "channel": "chat",
        "text": "where is my return?",
    }
    response = await console.post("/console/chat", fields, **{"HX-Request": "true"})
    assert response.status_code == 200
    assert 'data-intent="return_status"' in response.text
    assert "where is my return?" in response.text and "<html" not in response.text
    handoff = await console.post(
        "/console/chat", {**fields, "text": "I want to talk to a person"}, **{"HX-Request": "true"}
    )
    assert 'data-field="handoff"' in handoff.text and "queue" in handoff.text
    bad = await console.post("/console/chat", {**fields, "channel": "fax"})
    assert bad.status_code == 422 and "invalid_input" in bad.text


# --- pieces ------------------------------------------------------------------------------


def test_money_is_written_in_the_returns_currency() -> None:
    assert money("-29.99", "USD") == "-$29.99"
    assert money("1234.5", "EUR") == "€1,234.50"
    assert money("3000.00", "JPY") == "¥3,000"
    assert money("1.2345", "KWD") == "1.235 KWD"
    assert money("12.00", "SEK") == "12.00 SEK"
    assert money("12.00", "cad") == "CA$12.00"
    assert money("not money", "USD") == "not money"
    assert money(None, "USD") == "—"


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False))
def test_money_keeps_the_exact_amount(amount: Decimal) -> None:
    shown = money(str(amount), "USD")
    assert Decimal(shown.replace("$", "").replace(",", "")) == amount


def test_times_are_time_elements_for_the_viewers_zone() -> None:
    html = str(when("2026-11-30T12:05:11+00:00"))
    moment = '<time datetime="2026-11-30T12:05:11+00:00" data-local="datetime">'
    assert html == moment + "2026-11-30 12:05 UTC</time>"
    # UTC until the script writes it in the viewer's zone.
    assert 'data-local="date">2026-12-01<' in str(when("2026-11-30T23:05:11-02:00", "date"))
    assert str(when(None)) == "—" and str(when("<b>junk</b>")) == "&lt;b&gt;junk&lt;/b&gt;"
    assert [ago_text(s) for s in (5, 60, 600, 7200, 200_000)] == [
        "less than a minute ago",
        "1 minute ago",
        "10 minutes ago",
        "2 hours ago",
        "2 days ago",
    ]


@given(st.lists(st.sampled_from(["a@x.co", "A@X.co", "b@y.org", " ", ",", ";", "\n"]), max_size=12))
def test_emails_are_split_on_spaces_and_commas_each_once(parts: list[str]) -> None:
    text = " ".join(parts)
    found = parse_emails(text)
    assert len({e.casefold() for e in found}) == len(found)
    assert all(e and not re.search(r"[\s,;]", e) for e in found)
    assert {e.casefold() for e in found} == {p.casefold() for p in re.split(r"[\s,;]+", text) if p}


def test_the_audit_card_keeps_the_customers_rows_only() -> None:
    view = {
        "returns": [{"id": "11", "order": {"name": "#1086"}}],
        "orders": [{"name": "#1120"}],
    }
    rows = [
        {"id": 1, "inputs": {"returnId": "11"}},
        {"id": 2, "inputs": {"returnId": "12"}},
        {"id": 3, "inputs": {"orderName": "#1120", "zip": "1"}},
        {"id": 4, "inputs": {"type": "order", "value": "1086"}},
        {"id": 5, "inputs": {"type": "email", "value": "Jane@Example.com"}},
        {"id": 6, "inputs": {"type": "email", "value": "other@example.com"}},
        {"id": 7, "inputs": {"orderName": "#9999"}},
    ]
    kept = customer_audit(rows, view, ["jane@example.com"])
    assert [r["id"] for r in kept] == [1, 3, 4, 5]
