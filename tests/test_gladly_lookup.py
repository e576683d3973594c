"""`POST /gladly/lookup`, Gladly's customer Lookup Adaptor, against the sandbox with a
world whose dates are relative to now: signatures and Basic auth, both query shapes,
BASIC and DETAILED, the attributes Gladly's Rules read, and a slow Loop answered in time."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from loopdesk import store as db
from loopdesk.api.app import create_app
from loopdesk.domain.facts import FACTS
from loopdesk.errors import InvalidInput
from loopdesk.gladly.lookup import (
    ATTRIBUTES,
    FACT_ATTRIBUTES,
    attribute_table_markdown,
    external_customer_id,
    money_text,
    parse_lookup,
)
from loopdesk.gladly.signing import authorization_header
from loopdesk.settings import Settings
from tests.conftest import CONFORMANCE, REPO
from tests.routing_data import raw_order, raw_return, write_world

KEY = "lookup-signing-key-0123456789"
PATH = "/gladly/lookup"
JANE = ["jane@example.com", "jane.doe@example.com"]
SIGNING = (
    CONFORMANCE / "gladly_orders_lookup_adapter/app/authentication/request_signing/_test_/data"
)
CONTRACT_ATTRIBUTES = {"loopOpenReturns", "loopRefundPendingDays", "loopQueue"}


def lookup_world(path: Path) -> Path:
    now = datetime.now(UTC)
    returns = [
        # jane: items at the warehouse 9 days, refund not issued
        raw_return("5001", now, customer="jane@example.com", label_days_ago=9),
        # ... and under her other address, a return on its way back
        raw_return("5004", now, customer="jane.doe@example.com", label_status="in_transit"),
        # olga: return on its way back
        raw_return("5002", now, customer="olga@example.com", label_status="in_transit"),
        # nia: a closed return only
        raw_return("5003", now, customer="nia@example.com", state="closed", label_days_ago=30),
    ]
    orders = [
        raw_order("#5001", ["DELIVERED"], customer="jane@example.com", now=now),
        raw_order("#7001", ["SHIPMENT_STALLED"], customer="sam@example.com", now=now),
    ]
    return write_world(path, returns, orders)


def lookup_settings(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        sandbox_rate_limit_per_minute=0,
        sandbox_data=lookup_world(tmp_path / "world.json"),
        database_url=f"sqlite+aiosqlite:///{tmp_path}/lookup.db",
        **extra,
    )


@asynccontextmanager
async def service(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        yield app, c


def body_of(level: str = "DETAILED", **query: Any) -> bytes:
    return json.dumps({"lookupLevel": level, "query": query, "uniqueMatchRequired": False}).encode()


def gladly_headers(
    body: bytes,
    *,
    key: str = KEY,
    path: str = PATH,
    at: datetime | None = None,
    basic: tuple[str, str] | None = None,
) -> dict[str, str]:
    """The headers Gladly sends, signed with `key` (Basic auth signed too, as Gladly does)."""
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Gladly-Correlation-Id": "vXmSEPjVSWCaCMzvjufxZg",
        "Gladly-Time": (at or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ"),
        "X-B3-TraceId": "bd799210f8d549609a08ccef8ee7f166",
    }
    if basic is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(basic).encode()).decode()
    headers["Gladly-Authorization"] = authorization_header(key, "POST", path, headers, body)
    return headers


async def lookup(client: httpx.AsyncClient, level: str = "DETAILED", **query: Any) -> Any:
    body = body_of(level, **query)
    response = await client.post(PATH, content=body, headers=gladly_headers(body))
    assert response.status_code == 200, response.text
    return response.json()


async def one(client: httpx.AsyncClient, level: str = "DETAILED", **query: Any) -> Any:
    results = (await lookup(client, level, **query))["results"]
    assert len(results) == 1, results
    return results[0]


def sandbox_requests(app: FastAPI) -> int:
    return len(app.state.upstream.sandbox.state.faults.request_log)


async def fetched(app: FastAPI, emails: list[str]) -> datetime | None:
    store: db.Store = app.state.store
    async with store.reader() as session:
        return await db.fetched_at(session, emails)


@pytest.fixture
async def signed(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = lookup_settings(tmp_path, gladly_signing_key=KEY, gladly_lookup_replay_window_s=300)
    async with service(settings) as pair:
        yield pair


@pytest.fixture
async def client(
    signed: tuple[FastAPI, httpx.AsyncClient],
) -> AsyncIterator[httpx.AsyncClient]:
    yield signed[1]


# --- signatures ----------------------------------------------------------------------


async def test_gladlys_documented_vector_is_accepted(tmp_path: Path) -> None:
    """The vector's request, as Gladly sent it (its key, its path as the public path)."""
    request = json.loads((SIGNING / "request.json").read_text())
    integration = json.loads((SIGNING / "integration.json").read_text())
    header = (SIGNING / "success/expected_Gladly-Authorization.txt").read_text().strip()
    settings = lookup_settings(
        tmp_path,
        gladly_signing_key=integration["secrets"]["signingKey"],
        gladly_lookup_public_path="/api/v2/customer/lookup",
    )
    headers = {name: values[0] for name, values in request["headers"].items()}
    async with service(settings) as (app, client):
        response = await client.post(
            PATH,
            content=request["body"].encode(),
            headers={**headers, "Gladly-Authorization": header},
        )
        assert response.status_code == 200, response.text
        [result] = response.json()["results"]
        assert result["externalCustomerId"] == "abc"  # the linked id comes back
        assert result["customAttributes"]["loopOpenReturns"] == "0"
        assert sandbox_requests(app) > 0  # it was looked up


def _tampered_body(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body.replace(b"jane@", b"olga@"), gladly_headers(body)


def _tampered_header(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, {**gladly_headers(body), "Gladly-Correlation-Id": "another-one"}


def _missing(body: bytes) -> tuple[bytes, dict[str, str]]:
    headers = gladly_headers(body)
    del headers["Gladly-Authorization"]
    return body, headers


def _wrong_key(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, gladly_headers(body, key="not-the-key-0123456789")


def _unknown_algorithm(body: bytes) -> tuple[bytes, dict[str, str]]:
    headers = gladly_headers(body)
    headers["Gladly-Authorization"] = headers["Gladly-Authorization"].replace(
        "hmac-sha256", "hmac-md5"
    )
    return body, headers


def _replayed(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, gladly_headers(body, at=datetime.now(UTC) - timedelta(hours=1))


def _unsigned_garbage(_: bytes) -> tuple[bytes, dict[str, str]]:
    return b"\xff not json", {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_tampered_body, "mismatch"),
        (_tampered_header, "mismatch"),
        (_missing, "missing"),
        (_wrong_key, "mismatch"),
        (_unknown_algorithm, "unknown_algorithm"),
        (_replayed, "outside_window"),
        (_unsigned_garbage, "missing"),
    ],
    ids=lambda v: getattr(v, "__name__", v),
)
async def test_a_bad_signature_is_a_401_and_nothing_else_happens(
    signed: tuple[FastAPI, httpx.AsyncClient], make: Any, reason: str
) -> None:
    app, client = signed
    body, headers = make(body_of(emails=["jane@example.com"]))
    response = await client.post(PATH, content=body, headers=headers)
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "unauthorized"
    assert error["details"] == {"header": "Gladly-Authorization", "reason": reason}
    assert sandbox_requests(app) == 0  # no lookup
    assert await fetched(app, ["jane@example.com"]) is None  # no store write
    assert await fetched(app, ["olga@example.com"]) is None


async def test_a_signed_request_through_a_proxy_uses_the_public_path(tmp_path: Path) -> None:
    settings = lookup_settings(
        tmp_path, gladly_signing_key=KEY, gladly_lookup_public_path="/loopdesk/gladly/lookup"
    )
    body = body_of(emails=["jane@example.com"])
    async with service(settings) as (_, client):
        as_proxied = gladly_headers(body, path="/loopdesk/gladly/lookup")
        assert (await client.post(PATH, content=body, headers=as_proxied)).status_code == 200
        as_here = gladly_headers(body)
        assert (await client.post(PATH, content=body, headers=as_here)).status_code == 401


# --- Basic auth ----------------------------------------------------------------------


async def test_basic_auth_when_configured(tmp_path: Path) -> None:
    settings = lookup_settings(
        tmp_path, gladly_lookup_basic_user="gladly", gladly_lookup_basic_password="pa55-w0rd-xyz"
    )
    body = body_of(emails=["jane@example.com"])
    async with service(settings) as (app, client):
        none = await client.post(PATH, content=body)
        assert none.status_code == 401
        assert none.headers["WWW-Authenticate"] == 'Basic realm="loopdesk"'
        assert none.json()["error"]["details"] == {"header": "Authorization"}
        for user, password in [("gladly", "wrong"), ("other", "pa55-w0rd-xyz"), ("gladly", "")]:
            wrong = base64.b64encode(f"{user}:{password}".encode()).decode()
            refused = await client.post(
                PATH, content=body, headers={"Authorization": f"Basic {wrong}"}
            )
            assert refused.status_code == 401
        bearer = await client.post(PATH, content=body, headers={"Authorization": "Bearer x"})
        assert bearer.status_code == 401
        assert sandbox_requests(app) == 0
        good = base64.b64encode(b"gladly:pa55-w0rd-xyz").decode()
        ok = await client.post(PATH, content=body, headers={"Authorization": f"Basic {good}"})
        assert ok.status_code == 200 and len(ok.json()["results"]) == 1


async def test_basic_auth_and_signature_together(tmp_path: Path) -> None:
    basic = ("gladly", "pa55-w0rd-xyz")
    settings = lookup_settings(
        tmp_path,
        gladly_signing_key=KEY,
        gladly_lookup_basic_user=basic[0],
        gladly_lookup_basic_password=basic[1],
    )
    body = body_of(emails=["jane@example.com"])
    async with service(settings) as (_, client):
        both = gladly_headers(body, basic=basic)
        assert (await client.post(PATH, content=body, headers=both)).status_code == 200
        unsigned = {"Authorization": both["Authorization"]}
        assert (await client.post(PATH, content=body, headers=unsigned)).status_code == 401
        no_basic = gladly_headers(body)
        assert (await client.post(PATH, content=body, headers=no_basic)).status_code == 401


def test_basic_auth_needs_both_halves() -> None:
    with pytest.raises(ValueError, match="set both or neither"):
        Settings(gladly_lookup_basic_user="gladly")


async def test_without_a_key_nothing_is_checked_and_the_start_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with service(lookup_settings(tmp_path)) as (_, client):
        response = await client.post(PATH, content=body_of(emails=["jane@example.com"]))
        assert response.status_code == 200
    notice = [line for line in capsys.readouterr().err.splitlines() if "lookup_unsigned" in line]
    assert notice and "LOOPDESK_GLADLY_SIGNING_KEY" in notice[0]


async def test_with_a_key_no_notice_and_no_secret_in_the_logs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    password = "pa55-w0rd-never-logged"
    settings = lookup_settings(
        tmp_path,
        gladly_signing_key=KEY,
        gladly_lookup_basic_user="gladly",
        gladly_lookup_basic_password=password,
    )
    body = body_of(emails=["jane@example.com"])
    async with service(settings) as (_, client):
        basic = ("gladly", password)
        assert (
            await client.post(PATH, content=body, headers=gladly_headers(body, basic=basic))
        ).status_code == 200
        bad = gladly_headers(body, key="wrong-key-0123456789", basic=basic)
        assert (await client.post(PATH, content=body, headers=bad)).status_code == 401
    log = capsys.readouterr().err
    assert "lookup_unsigned" not in log
    assert "gladly.lookup_refused" in log
    assert KEY not in log and password not in log
    assert "jane@example.com" not in log


# --- what a lookup answers -----------------------------------------------------------


async def test_basic_lookup_of_a_customer(client: httpx.AsyncClient) -> None:
    result = await one(client, "BASIC", emails=["jane@example.com"], name="Jane Doe")
    assert result["name"] == "Jane Doe"
    assert result["emails"] == [{"original": "jane@example.com"}]
    assert "transactions" not in result  # BASIC: the profile and its attributes
    attributes = result["customAttributes"]
    assert attributes["loopRefundPendingDays"] == "9"
    assert attributes["loopRefundPending"] == "true"
    assert attributes["loopOpenReturns"] == "1"
    assert attributes["loopLatestReturnState"] == "open"
    assert attributes["loopQueue"] == "returns-priority"
    assert attributes["loopPriority"] == "90"
    assert attributes["loopRule"] == "refund-waiting-a-week"
    assert attributes["loopVip"] == "false"
    assert attributes["loopStale"] == "false"
    assert datetime.fromisoformat(attributes["loopAsOf"]) <= datetime.now(UTC)


async def test_every_attribute_is_a_flat_string(client: httpx.AsyncClient) -> None:
    for email in ("jane@example.com", "sam@example.com", "nobody@example.com"):
        attributes = (await one(client, emails=[email]))["customAttributes"]
        assert list(attributes) == [a.name for a in ATTRIBUTES]
        assert all(isinstance(v, str) for v in attributes.values())
        assert set(attributes) >= CONTRACT_ATTRIBUTES


async def test_detailed_lookup_carries_orders_and_returns(client: httpx.AsyncClient) -> None:
    result = await one(client, emails=["jane@example.com"])
    orders = [t for t in result["transactions"] if t["type"] == "ORDER"]
    returns = [t for t in result["transactions"] if t["type"] == "GENERIC"]
    [order] = orders
    assert order["orderNumber"] == "#5001"
    assert order["orderStatus"] == "Return open"
    assert order["currencyCode"] == "USD"
    assert order["orderLink"].startswith("https://")
    assert order["fulfillments"] == [
        {
            "trackingNumber": "1Z50010",
            "carrier": "UPS",
            "status": "DELIVERED",
            "trackingUrl": order["orderLink"],
        }
    ]
    [product] = order["products"]
    assert product["name"] == "t-shirt"
    assert product["status"] == "return at the warehouse"
    assert product["unitPrice"] == "$29.99"
    [ret] = returns
    assert ret["returnId"] == "5001" and ret["orderNumber"] == "#5001"
    assert ret["status"] == "open" and ret["stage"] == "at the warehouse"
    assert ret["refund"] == "$29.99"
    assert ret["expectedBy"] >= datetime.now(UTC).date().isoformat() or ret["late"]
    assert datetime.fromisoformat(ret["createdAt"]) < datetime.now(UTC)


async def test_a_shipment_problem_routes_to_orders(client: httpx.AsyncClient) -> None:
    result = await one(client, emails=["sam@example.com"])
    assert result["customAttributes"]["loopShipmentProblem"] == "true"
    assert result["customAttributes"]["loopQueue"] == "orders"
    [order] = result["transactions"]
    assert order["orderNumber"] == "#7001"
    assert order["orderStatus"] == "Shipment problem"
    assert order["fulfillments"][0]["status"] == "SHIPMENT_STALLED"
    assert order["products"] == []


async def test_a_closed_return_without_tracking(client: httpx.AsyncClient) -> None:
    result = await one(client, emails=["nia@example.com"])
    [order, ret] = result["transactions"]
    assert (order["orderNumber"], order["orderStatus"]) == ("#5003", "Returned")
    assert order["fulfillments"] == [] and "orderLink" not in order
    assert ret["stage"] == "refunded" and "expectedBy" not in ret
    assert result["customAttributes"]["loopQueue"] == "general"


async def test_unknown_customers(client: httpx.AsyncClient) -> None:
    # BASIC: no match, so Gladly links nothing.
    assert (await lookup(client, "BASIC", emails=["nobody@example.com"]))["results"] == []
    # DETAILED (a linked profile): one result, attributes cleared to what is true now.
    result = await one(client, emails=["nobody@example.com"], externalCustomerId="x-1")
    assert result["externalCustomerId"] == "x-1"
    assert result["transactions"] == []
    assert result["customAttributes"]["loopOpenReturns"] == "0"
    assert result["customAttributes"]["loopQueue"] == "general"
    # No address at all (a phone, a name): nothing to look up with.
    for level in ("BASIC", "DETAILED"):
        empty = await lookup(client, level, phones=["+15551234567"], name="Someone")
        assert empty == {"results": []}
    assert (await lookup(client, "BASIC", email="not an address"))["results"] == []


@pytest.mark.parametrize(
    "query",
    [
        {"email": "jane@example.com"},
        {"emails": "jane@example.com"},
        {"emails": ["jane@example.com"]},
        {"emails": [" jane@example.com "]},
        {"email": ["jane@example.com"], "emails": ["JANE@example.com"]},
    ],
)
async def test_values_as_a_string_or_a_list(client: httpx.AsyncClient, query: Any) -> None:
    reference = await one(client, "BASIC", emails=["jane@example.com"])
    result = await one(client, "BASIC", **query)
    assert result["externalCustomerId"] == reference["externalCustomerId"]
    assert [e["original"].lower() for e in result["emails"]] == ["jane@example.com"]
    attributes = {k: v for k, v in result["customAttributes"].items() if k != "loopAsOf"}
    assert attributes == {k: v for k, v in reference["customAttributes"].items() if k != "loopAsOf"}


@pytest.mark.parametrize(
    "attributes",
    [
        {"vip": "true"},
        {"customAttributes": {"vip": "true"}},
        {"tags": ["VIP"]},
        {"customAttributes": {"tags": "gold;VIP"}},
        {"vip": "false", "customAttributes": {"vip": True}},  # nested wins
    ],
)
async def test_both_query_shapes_carry_the_profiles_attributes(
    client: httpx.AsyncClient, attributes: dict[str, Any]
) -> None:
    result = await one(client, emails=["olga@example.com"], **attributes)
    assert result["customAttributes"]["loopVip"] == "true"
    assert result["customAttributes"]["loopTags"] == "vip,return-open"
    plain = await one(client, emails=["olga@example.com"], favoriteFood="Apple Pie")
    assert plain["customAttributes"]["loopVip"] == "false"
    assert plain["customAttributes"]["loopTags"] == "return-open"


async def test_our_own_attributes_coming_back_are_not_read(client: httpx.AsyncClient) -> None:
    """Gladly flattens the profile's attributes into the query, ours included."""
    result = await one(client, emails=["olga@example.com"], loopVip="true", loopQueue="x")
    assert result["customAttributes"]["loopVip"] == "false"
    assert result["customAttributes"]["loopQueue"] == "returns"


async def test_external_customer_id_is_stable(client: httpx.AsyncClient) -> None:
    first = await one(client, "BASIC", emails=JANE)
    again = await one(client, "BASIC", emails=JANE)
    reordered = await one(client, "BASIC", emails=list(reversed(JANE)))
    cased = await one(client, "DETAILED", emails=[e.upper() for e in JANE])
    ids = {r["externalCustomerId"] for r in (first, again, reordered, cased)}
    assert ids == {external_customer_id(JANE)}
    [only] = ids
    assert re.fullmatch(r"loopdesk-[0-9a-f]{24}", only)
    assert "jane" not in only
    # Both addresses' returns are the customer's.
    assert first["customAttributes"]["loopOpenReturns"] == "2"
    # A linked profile keeps its id, whatever its addresses now.
    linked = await one(client, emails=["jane.doe@example.com"], externalCustomerId=only)
    assert linked["externalCustomerId"] == only


# --- in time -------------------------------------------------------------------------


@pytest.fixture
async def slow_loop(
    tmp_path: Path, instant_retries: None
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    # A TTL of 0: every lookup asks Loop, so the store can only stand in.
    settings = lookup_settings(
        tmp_path, gladly_signing_key=KEY, lookup_ttl_s=0, gladly_lookup_budget_s=1.0
    )
    async with service(settings) as pair:
        yield pair


@pytest.mark.timing
async def test_a_slow_loop_is_answered_in_time_from_the_store(
    slow_loop: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = slow_loop
    fresh = await one(client, emails=["jane@example.com"])
    await app.state.customers.settled()  # the fetch is stored after its answer
    stored_at = await fetched(app, ["jane@example.com"])
    assert stored_at is not None
    as_of = stored_at.isoformat()
    assert fresh["customAttributes"]["loopStale"] == "false"
    # Each Loop request now takes 2 s, and a lookup makes two in a row.
    app.state.upstream.sandbox.state.faults.add("", latency_ms=2000)
    started = time.monotonic()
    stale = await one(client, emails=["jane@example.com"])
    elapsed = time.monotonic() - started
    assert elapsed < 1.9, elapsed  # the budget (1 s) and a store read
    attributes = stale["customAttributes"]
    assert attributes["loopStale"] == "true"
    assert attributes["loopAsOf"] == as_of
    assert attributes["loopRefundPendingDays"] == "9"
    assert attributes["loopQueue"] == "returns-priority"
    assert [t["orderNumber"] for t in stale["transactions"]] == ["#5001", "#5001"]
    # The fetch that ran out of time goes on and fills the store for the next lookup.
    deadline = time.monotonic() + 20
    while (await fetched(app, ["jane@example.com"])) == stored_at:
        assert time.monotonic() < deadline, "the background fetch never finished"
        await asyncio.sleep(0.1)


@pytest.mark.timing
async def test_a_slow_loop_and_nothing_stored(
    slow_loop: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = slow_loop
    app.state.upstream.sandbox.state.faults.add("", latency_ms=1500)
    started = time.monotonic()
    assert (await lookup(client, "BASIC", emails=["olga@example.com"]))["results"] == []
    result = await one(client, emails=["olga@example.com"])
    assert time.monotonic() - started < 2 * 1.45  # two lookups, each within its budget
    # Nothing known: the attributes Gladly holds are left as they are.
    assert result["customAttributes"] == {"loopStale": "true", "loopAsOf": ""}
    assert result["transactions"] == []
    # The fetch goes on; once it is stored, the next lookup knows her.
    deadline = time.monotonic() + 20
    while await fetched(app, ["olga@example.com"]) is None:
        assert time.monotonic() < deadline, "the background fetch never finished"
        await asyncio.sleep(0.1)
    app.state.upstream.sandbox.state.faults.clear()
    known = await one(client, emails=["olga@example.com"])
    assert known["customAttributes"]["loopOpenReturns"] == "1"


async def test_loop_down_is_answered_from_the_store(
    slow_loop: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = slow_loop
    await one(client, emails=["sam@example.com"])
    app.state.upstream.sandbox.state.faults.add("", status=503)
    result = await one(client, emails=["sam@example.com"])
    assert result["customAttributes"]["loopStale"] == "true"
    assert result["customAttributes"]["loopQueue"] == "orders"
    assert result["transactions"][0]["orderStatus"] == "Shipment problem"


# --- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"[1, 2]", 422),
        (json.dumps({"lookupLevel": "FULL", "query": {}}).encode(), 422),
        (json.dumps({"lookupLevel": "BASIC"}).encode(), 422),
        (json.dumps({"lookupLevel": "BASIC", "query": []}).encode(), 422),
        (json.dumps({"lookupLevel": "BASIC", "query": {"emails": 7}}).encode(), 422),
        (json.dumps({"lookupLevel": "BASIC", "query": {"emails": ["a@b.c", 7]}}).encode(), 422),
        (json.dumps({"lookupLevel": "BASIC", "query": {}, "uniqueMatchRequired": 1}).encode(), 422),
        (b"[" * 5000 + b"]" * 5000, 400),
    ],
)
async def test_bad_bodies_get_clear_errors(
    client: httpx.AsyncClient, body: bytes, status: int
) -> None:
    response = await client.post(PATH, content=body, headers=gladly_headers(body))
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == ("bad_request" if status == 400 else "invalid_input")
    assert error["message"]


async def test_text_that_cannot_be_sent_back_is_dropped(client: httpx.AsyncClient) -> None:
    body = (
        b'{"lookupLevel": "BASIC", "query": {"emails": ["jane@example.com"], '
        b'"name": "Jane\\u0000 \\ud800Doe", "externalCustomerId": "\\ud800"}}'
    )
    response = await client.post(PATH, content=body, headers=gladly_headers(body))
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert result["name"] == "Jane Doe"
    assert result["externalCustomerId"].startswith("loopdesk-")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@given(
    level=st.sampled_from(["BASIC", "DETAILED", "basic", "x", 1, None]),
    query=st.dictionaries(
        st.sampled_from(["emails", "email", "name", "id", "externalCustomerId", "customAttributes"])
        | st.text(max_size=10),
        _json | st.lists(st.emails(), max_size=3),
        max_size=6,
    )
    | _json,
)
def test_any_request_is_read_or_refused_clearly(level: Any, query: Any) -> None:
    try:
        parsed = parse_lookup({"lookupLevel": level, "query": query})
    except InvalidInput as exc:
        assert exc.message and exc.http_status == 422
    else:
        assert parsed.level in ("BASIC", "DETAILED")
        assert all("@" in e for e in parsed.emails)
        assert len({e.lower() for e in parsed.emails}) == len(parsed.emails)
        assert not set(parsed.attributes) & {"emails", "email", "name", "customAttributes"}


# --- the attributes, documented ------------------------------------------------------


def test_attribute_names_come_from_the_facts() -> None:
    assert list(FACT_ATTRIBUTES) == [f.name for f in FACTS]
    assert FACT_ATTRIBUTES["open_return_count"] == "loopOpenReturns"
    assert FACT_ATTRIBUTES["refund_pending_days"] == "loopRefundPendingDays"
    assert FACT_ATTRIBUTES["latest_return_state"] == "loopLatestReturnState"
    assert FACT_ATTRIBUTES["vip"] == "loopVip"
    names = [a.name for a in ATTRIBUTES]
    assert len(names) == len(set(names))
    assert {"loopQueue", "loopPriority", "loopRule", "loopStale", "loopAsOf"} <= set(names)


def _readme_table() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(
        r"<!-- gladly-attributes:begin -->\n(.*?)<!-- gladly-attributes:end -->", text, re.S
    )
    assert found, "the README's Lookup Adaptor section holds the attribute table"
    return found.group(1)


def test_the_readme_table_is_generated_from_the_code() -> None:
    assert _readme_table() == attribute_table_markdown()


def test_money_reads_with_its_currency() -> None:
    assert money_text("29.9", "usd") == "$29.90"
    assert money_text("-5.00", "EUR") == "-€5.00"
    assert money_text("12.00", "SEK") == "12.00 SEK"
    assert money_text("N/A", "USD") == "N/A"
