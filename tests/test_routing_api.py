"""`POST /v1/routing/decide` and `GET /v1/routing/decisions` against the sandbox, with a
world whose dates are relative to now."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopdesk.api.app import create_app
from loopdesk.domain.facts import FACTS
from loopdesk.routing.rules import RulesError
from loopdesk.settings import Settings
from tests.routing_data import raw_order, raw_return, write_world

KEY = "test-routing-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
CONTRACT_KEYS = {"queue", "priority", "rule", "tags", "facts", "trace"}


def routing_world(path: Path) -> Path:
    now = datetime.now(UTC)
    returns = [
        # jane: items at the warehouse 9 days, refund not issued
        raw_return("5001", now, customer="jane@example.com", label_days_ago=9),
        # olga: return on its way back
        raw_return("5002", now, customer="olga@example.com", label_status="in_transit"),
        # nia: a closed return only
        raw_return("5003", now, customer="nia@example.com", state="closed", label_days_ago=30),
    ]
    orders = [
        raw_order("#7001", ["SHIPMENT_STALLED"], customer="sam@example.com", now=now),
        raw_order("#7002", ["DELIVERED"], customer="nia@example.com", now=now),
    ]
    return write_world(path, returns, orders)


def world_settings(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        api_key=KEY,
        sandbox_rate_limit_per_minute=0,
        sandbox_data=routing_world(tmp_path / "world.json"),
        database_url=f"sqlite+aiosqlite:///{tmp_path}/routing.db",
        **extra,
    )


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(world_settings(tmp_path))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        yield c


async def route(client: httpx.AsyncClient, *emails: str, **body: Any) -> dict[str, Any]:
    payload = {"customer": {"emails": list(emails), **body.pop("customer", {})}, **body}
    response = await client.post("/v1/routing/decide", json=payload, headers=AUTH)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


@pytest.mark.parametrize(
    ("email", "queue", "rule"),
    [
        ("jane@example.com", "returns-priority", "refund-waiting-a-week"),
        ("olga@example.com", "returns", "open-return"),
        ("sam@example.com", "orders", "shipment-problem"),
        ("nia@example.com", "general", "everything-else"),
        ("nobody@example.com", "general", "everything-else"),
    ],
)
async def test_decide_follows_the_default_rules(
    client: httpx.AsyncClient, email: str, queue: str, rule: str
) -> None:
    body = await route(client, email, channel="chat", text="where is my refund?")
    assert set(body) >= CONTRACT_KEYS
    assert (body["queue"], body["rule"]) == (queue, rule)
    assert list(body["facts"]) == [f.name for f in FACTS]
    trace = body["trace"]
    assert [s["rule"] for s in trace] == [
        "vip",
        "refund-waiting-a-week",
        "open-return",
        "shipment-problem",
        "everything-else",
    ]
    assert [s["rule"] for s in trace if s["result"] == "matched"][-1] == rule
    for step in trace:
        assert set(step["reads"]) <= set(body["facts"])
        for name, value in step["reads"].items():
            assert body["facts"][name] == value


async def test_facts_of_a_decision(client: httpx.AsyncClient) -> None:
    facts = (await route(client, "jane@example.com"))["facts"]
    assert facts["refund_pending"] is True and facts["refund_pending_days"] == 9
    assert facts["has_open_return"] is True and facts["open_return_count"] == 1
    assert (await route(client, "sam@example.com"))["facts"]["shipment_problem"] is True


async def test_lookup_facts_are_the_decision_facts(client: httpx.AsyncClient) -> None:
    lookup = await client.get("/v1/customers/lookup?email=jane@example.com", headers=AUTH)
    decided = await route(client, "jane@example.com")
    assert lookup.json()["facts"] == decided["facts"]


async def test_vip_attributes_add_the_tag_and_keep_the_queue(client: httpx.AsyncClient) -> None:
    body = await route(client, "olga@example.com", customer={"attributes": {"tags": ["VIP"]}})
    assert body["facts"]["vip"] is True
    assert body["tags"] == ["vip", "return-open"]
    assert body["queue"] == "returns"
    assert body["trace"][0]["result"] == "matched" and body["trace"][0]["continue"] is True


async def test_a_fresh_store_answers_without_upstream_calls(client: httpx.AsyncClient) -> None:
    first = await route(client, "jane@example.com")
    await client.delete("/sandbox/_sandbox/requests", headers=AUTH)
    second = await route(client, "jane@example.com")
    counts = (await client.get("/sandbox/_sandbox/requests", headers=AUTH)).json()
    assert sum(counts.values()) == 0
    assert second["facts"] == first["facts"] and second["stale"] is False


async def test_decisions_are_recorded_and_paged_with_filters(client: httpx.AsyncClient) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    for email in ("JANE@Example.com ", "olga@example.com", "sam@example.com", "olga@example.com"):
        await route(client, email, channel="sms", intent="return_status")

    async def page(**params: Any) -> dict[str, Any]:
        response = await client.get("/v1/routing/decisions", params=params, headers=AUTH)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    everything = await page()
    items = everything["items"]
    assert [i["queue"] for i in items] == ["returns", "orders", "returns", "returns-priority"]
    assert items[-1]["emails"] == ["jane@example.com"]  # stored normalized
    assert items[-1]["facts"]["refund_pending_days"] == 9
    assert {(i["channel"], i["intent"]) for i in items} == {("sms", "return_status")}
    assert everything["nextBefore"] is None

    returns = await page(queue="returns")
    assert len(returns["items"]) == 2
    assert {i["rule"] for i in returns["items"]} == {"open-return"}
    assert [i["queue"] for i in (await page(rule="shipment-problem"))["items"]] == ["orders"]

    first = await page(limit=3)
    assert len(first["items"]) == 3 and first["nextBefore"] == first["items"][-1]["id"]
    rest = await page(limit=3, before=first["nextBefore"])
    assert [i["id"] for i in first["items"] + rest["items"]] == [i["id"] for i in items]

    assert len((await page(since=started.isoformat()))["items"]) == 4
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await page(since=later))["items"] == []
    assert len((await page(until=later))["items"]) == 4


async def test_routing_needs_a_key(client: httpx.AsyncClient) -> None:
    body = {"customer": {"emails": ["jane@example.com"]}, "channel": "chat"}
    assert (await client.post("/v1/routing/decide", json=body)).status_code == 401
    assert (await client.get("/v1/routing/decisions")).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"customer": {}},
        {"customer": {"emails": []}},
        {"customer": {"emails": ["not-an-email"]}},
        {"customer": {"emails": [""]}},
        {"customer": {"emails": ["jane\x00@example.com"]}},
        {"customer": {"emails": ["jane@example.com"]}, "channel": "chat room"},
        {"customer": {"emails": ["jane@example.com"]}, "intent": "x" * 40},
        {"customer": {"emails": ["a" * 400 + "@example.com"]}},
    ],
)
async def test_bad_decide_bodies_are_422_in_the_error_shape(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await client.post("/v1/routing/decide", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and error["message"]


@pytest.mark.parametrize(
    "query",
    [
        "?limit=0",
        "?limit=501",
        "?before=0",
        "?since=yesterday",
        f"?queue={'q' * 65}",
        "?until=0001-01-01T00:00:00%2B01:01",
        "?since=9999-12-31T23:59:59-23:59",
    ],
)
async def test_bad_decision_filters_are_422(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get(f"/v1/routing/decisions{query}", headers=AUTH)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"


async def test_the_openapi_schema_knows_the_shapes(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    decide = schema["paths"]["/v1/routing/decide"]["post"]
    answer = decide["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["$ref"].endswith("/DecisionOut")
    fields = schema["components"]["schemas"]["DecisionOut"]["properties"]
    assert set(fields) >= CONTRACT_KEYS
    assert "/v1/routing/decisions" in schema["paths"]


async def test_custom_rules_file_is_used(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rule]]\nname = "sms-first"\ncondition = \'channel == "sms"\'\nqueue = "sms"\n'
        "priority = 70\n\n"
        '[[rule]]\nname = "rest"\ncondition = "true"\nqueue = "general"\n'
    )
    app = create_app(world_settings(tmp_path, rules_file=rules))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        sms = await route(c, "jane@example.com", channel="SMS")
        chat = await route(c, "jane@example.com", channel="chat")
    assert (sms["queue"], sms["priority"], sms["rule"]) == ("sms", 70, "sms-first")
    assert chat["rule"] == "rest"


def test_a_bad_rules_file_fails_at_start_up_with_the_rule(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "typo"\ncondition = "refund_pendin"\nqueue = "x"\n')
    with pytest.raises(RulesError) as caught:
        create_app(world_settings(tmp_path, rules_file=rules))
    assert 'rule 1 "typo"' in caught.value.message and "unknown fact" in caught.value.message
