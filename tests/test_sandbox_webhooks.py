"""The sandbox sends signed Loop webhooks, retries them, and never holds up an action."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from random import Random
from typing import Any

import httpx
import pytest
import respx
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from loopdesk.sandbox.app import create_sandbox_app
from loopdesk.sandbox.payloads import return_payload
from loopdesk.sandbox.seed import generate_world
from loopdesk.sandbox.webhooks import (
    MAX_RETRY_AFTER,
    NO_RESPONSE,
    WebhookSender,
    backoff_delay,
    configure_webhooks,
    encode_body,
    return_event,
    sign,
)
from loopdesk.sandbox.world import World
from loopdesk.settings import Settings

LOOP = {"X-Authorization": "test-token"}
SECRET = "whsec-test"
HOOK_URL = "http://receiver.test/hooks"
OLD = "2025-03-01T10:00:00+00:00"
# What a `return` webhook adds to the list object (reference section 7.5).
DOCUMENTED_ADDITIONS = (
    "edited_at",
    "provider_order_external_id",
    "provider_order_sales_channel",
    "customer_detail",
    "address",
    "is_gift_return",
    "refunds",
    "labels",
)


# --- encoding and signature -----------------------------------------------------------


def test_encode_body_is_php_json_encode() -> None:
    payload = {"url": "https://shop.example/#/return/a", "name": "Café ☕", "n": [1, 2.5, None]}
    body = encode_body(payload)
    assert body == (
        b'{"url":"https:\\/\\/shop.example\\/#\\/return\\/a",'
        b'"name":"Caf\\u00e9 \\u2615","n":[1,2.5,null]}'
    )
    assert json.loads(body) == payload


def test_encode_body_escaped_backslash_before_slash() -> None:
    payload = {"path": "a\\/b\n"}
    body = encode_body(payload)
    assert body == b'{"path":"a\\\\\\/b\\n"}'
    assert json.loads(body) == payload


def test_sign_known_vector() -> None:
    # HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), a published vector.
    digest = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    expected = base64.b64encode(bytes.fromhex(digest)).decode()
    assert sign(b"The quick brown fox jumps over the lazy dog", "key") == expected


def test_backoff_grows_with_jitter() -> None:
    rng = Random(7)
    for attempt in range(1, 6):
        ceiling = 2.0 ** (attempt - 1)
        delays = {backoff_delay(attempt, 1.0, rng) for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered, not a fixed schedule


# --- a receiver -----------------------------------------------------------------------


@dataclass
class Receiver:
    """An ASGI webhook receiver answering with scripted statuses (then 200)."""

    statuses: list[int] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    gate: asyncio.Event | None = None
    received: list[tuple[bytes, str | None, str | None]] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        body = await request.body()
        if self.gate is not None:
            await self.gate.wait()
        self.received.append(
            (body, request.headers.get("x-loop-signature"), request.headers.get("content-type"))
        )
        status = self.statuses.pop(0) if self.statuses else 200
        await Response(b"", status_code=status, headers=self.headers)(scope, receive, send)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self))

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body, _, _ in self.received]


def _verified(body: bytes, signature: str | None) -> bool:
    expected = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest())
    return signature is not None and hmac.compare_digest(expected, signature.encode())


async def test_send_signs_the_exact_bytes() -> None:
    receiver = Receiver()
    async with receiver.client() as client:
        sender = WebhookSender(HOOK_URL, SECRET, client=client)
        status = await sender.send("return", "return.updated", {"id": "1", "url": "https://x/y"})
    assert status == 200
    [(body, signature, content_type)] = receiver.received
    assert content_type == "application/json"
    assert _verified(body, signature)
    assert (
        body == b'{"topic":"return","trigger":"return.updated","id":"1","url":"https:\\/\\/x\\/y"}'
    )


async def test_send_retries_until_2xx() -> None:
    receiver = Receiver(statuses=[500, 503, 404, 204])
    async with receiver.client() as client:
        sender = WebhookSender(HOOK_URL, SECRET, client=client, base_delay=0.0)
        assert await sender.send("label", "label.updated", {"return_id": "1"}) == 204
    assert len(receiver.received) == 4
    assert len(set(receiver.received)) == 1  # every retry is the same signed body


async def test_send_gives_up_after_five_retries() -> None:
    receiver = Receiver(statuses=[500] * 10)
    async with receiver.client() as client:
        sender = WebhookSender(HOOK_URL, SECRET, client=client, base_delay=0.0)
        assert await sender.send("return", "return.updated", {}) == 500
    assert len(receiver.received) == 6


async def test_send_honours_short_retry_after_and_stops_on_long() -> None:
    short = Receiver(statuses=[429], headers={"Retry-After": "0"})
    async with short.client() as client:
        sender = WebhookSender(HOOK_URL, SECRET, client=client, base_delay=60.0)
        assert await asyncio.wait_for(sender.send("return", "return.updated", {}), 2) == 200
    long = Receiver(statuses=[429], headers={"Retry-After": str(int(MAX_RETRY_AFTER) + 1)})
    async with long.client() as client:
        sender = WebhookSender(HOOK_URL, SECRET, client=client, base_delay=0.0)
        assert await sender.send("return", "return.updated", {}) == 429
    assert len(long.received) == 1


async def test_send_retries_transport_errors() -> None:
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(HOOK_URL).mock(
            side_effect=[
                httpx.ConnectError("refused"),
                httpx.ReadTimeout("slow"),
                httpx.Response(202),
            ]
        )
        sender = WebhookSender(HOOK_URL, SECRET, base_delay=0.0)
        assert await sender.send("return", "return.updated", {"id": "7"}) == 202
    assert route.call_count == 3
    request = route.calls.last.request
    assert _verified(request.content, request.headers["x-loop-signature"])


async def test_send_reports_no_response_when_unreachable() -> None:
    with respx.mock() as mock:
        route = mock.post(HOOK_URL).mock(side_effect=httpx.ConnectError("refused"))
        sender = WebhookSender(HOOK_URL, SECRET, base_delay=0.0)
        assert await sender.send("return", "return.updated", {}) == NO_RESPONSE
    assert route.call_count == 6


# --- the sandbox app sending webhooks -------------------------------------------------


def _return(rid: str, state: str) -> dict[str, Any]:
    return {
        "id": rid,
        "state": state,
        "customer": "ann@example.com",
        "created_at": OLD,
        "updated_at": OLD,
        "order_id": "50265228",
        "provider_order_id": "4803021602967",
        "carrier": "N/A",
        "tracking_number": "N/A",
        "label_status": "N/A",
        "label_updated_at": "N/A",
        "status_page_url": f"https://company.loopreturns.com/#/return/{rid}",
    }


@pytest.fixture
def app() -> FastAPI:
    world = World(returns={r["id"]: r for r in (_return("1", "open"), _return("2", "open"))})
    return create_sandbox_app(Settings(sandbox_rate_limit_per_minute=0), world=world)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        yield client


@pytest.fixture
async def receiver(app: FastAPI) -> AsyncIterator[Receiver]:
    receiver = Receiver()
    async with receiver.client() as hook_client:
        configure_webhooks(app, HOOK_URL, SECRET, client=hook_client, base_delay=0.0)
        yield receiver


async def test_process_sends_updated_then_closed(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    response = await client.post("/api/v1/warehouse/return/1/process", headers=LOOP)
    assert response.json() is True
    await app.state.webhook_tasks_drained()
    events = receiver.events()
    assert [(e["topic"], e["trigger"]) for e in events] == [
        ("return", "return.updated"),
        ("return", "return.closed"),
    ]
    item = app.state.world.returns["1"]
    added = {"topic", "trigger", "shop_id", *DOCUMENTED_ADDITIONS}
    for event in events:
        assert event["shop_id"] == 12345
        # Loop's documented shape: the list object without `updated_at`, plus its additions.
        assert "updated_at" not in event and event["id"] == "1"  # odd id: the old string
        unchanged = {k: v for k, v in item.items() if k not in ("updated_at", "id")}
        assert {k: v for k, v in event.items() if k not in added | {"id"}} == unchanged
        assert set(DOCUMENTED_ADDITIONS) <= set(event)
    for body, signature, _ in receiver.received:
        assert _verified(body, signature)
        assert b'"status_page_url":"https:\\/\\/company.loopreturns.com\\/#\\/return\\/1"' in body


async def test_flag_sends_only_updated(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    await client.post("/api/v1/warehouse/return/1/flag", headers=LOOP)
    refused = await client.post("/api/v1/warehouse/return/1/flag", headers=LOOP)
    assert refused.status_code == 200 and "errors" in refused.json()  # Loop's 200 refusal
    await app.state.webhook_tasks_drained()
    assert [(e["trigger"], e["state"]) for e in receiver.events()] == [("return.updated", "review")]


async def test_action_does_not_wait_for_the_receiver(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.gate = asyncio.Event()
    response = await asyncio.wait_for(
        client.post("/api/v1/warehouse/return/1/cancel", headers=LOOP), 2
    )
    assert response.json() is True and receiver.received == []
    receiver.gate.set()
    await asyncio.wait_for(app.state.webhook_tasks_drained(), 2)
    assert [e["state"] for e in receiver.events()] == ["cancelled"]
    deliveries = list(app.state.webhook_deliveries.log)
    assert [(d.trigger, d.status) for d in deliveries] == [("return.updated", 200)]


async def test_no_receiver_no_webhooks(app: FastAPI, client: httpx.AsyncClient) -> None:
    assert app.state.webhooks is None
    response = await client.post("/api/v1/warehouse/return/1/process", headers=LOOP)
    assert response.json() is True
    assert not app.state.webhook_deliveries.tasks


async def test_label_route_sends_label_updated(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    body = {"label_status": "in_transit", "carrier": "USPS", "tracking_number": "9400111"}
    response = await client.post("/_sandbox/returns/2/label", json=body)
    assert response.status_code == 200
    item = app.state.world.returns["2"]
    assert item["label_updated_at"] == item["updated_at"] != OLD
    await app.state.webhook_tasks_drained()
    assert receiver.events() == [
        {
            "topic": "label",
            "trigger": "label.updated",
            "shop_id": 12345,
            "return_id": "2",
            "order_id": "50265228",
            "provider_order_id": 4803021602967,
            "carrier": "USPS",
            "tracking_number": "9400111",
            "label_status": "in_transit",
            "label_updated_at": item["label_updated_at"],
        }
    ]


@pytest.mark.parametrize("body", [{}, {"label_status": ""}, {"label_status": "new", "x": 1}])
async def test_label_route_validation(client: httpx.AsyncClient, body: Any) -> None:
    response = await client.post("/_sandbox/returns/2/label", json=body)
    assert response.status_code == 422


async def test_touch_route(app: FastAPI, client: httpx.AsyncClient, receiver: Receiver) -> None:
    response = await client.post("/_sandbox/returns/2/touch")
    assert response.status_code == 200 and response.json()["updated_at"] != OLD
    await app.state.webhook_tasks_drained()
    [event] = receiver.events()
    # An even id goes out as the newer integer `id`.
    assert (event["topic"], event["trigger"], event["id"]) == ("return", "return.updated", 2)


async def test_control_routes_on_unknown_return(client: httpx.AsyncClient) -> None:
    for path in ("/_sandbox/returns/9/touch", "/_sandbox/returns/9/label"):
        response = await client.post(path, json={"label_status": "new"})
        assert (response.status_code, response.json()) == (
            404,
            {"message": "No return found with this ID"},
        )


async def test_configure_over_http(app: FastAPI, client: httpx.AsyncClient) -> None:
    invalid = await client.post("/_sandbox/webhooks", json={"url": HOOK_URL})
    assert invalid.status_code == 422
    response = await client.post(
        "/_sandbox/webhooks", json={"url": HOOK_URL, "secret": SECRET, "base_delay": 0}
    )
    assert response.status_code == 201
    # The sandbox delivers through httpx's own pool: mocked there, so the test's client
    # (over ASGI) is not.
    with respx.mock(using="httpcore") as mock:
        route = mock.post(HOOK_URL).mock(side_effect=[httpx.Response(500), httpx.Response(200)])
        await client.post("/api/v1/warehouse/return/1/flag", headers=LOOP)
        await app.state.webhook_tasks_drained()
    assert route.call_count == 2
    request = route.calls.last.request
    assert _verified(request.content, request.headers["x-loop-signature"])
    cleared = await client.delete("/_sandbox/webhooks")
    assert cleared.json() == {"cleared": True} and app.state.webhooks is None
    await client.post("/api/v1/warehouse/return/2/flag", headers=LOOP)
    assert not app.state.webhook_deliveries.tasks


# --- payload shape (reference section 7.5) ----------------------------------------------

# The keys of Loop's documented `return` webhook example, beside the list object's own.
DOCUMENTED_EXAMPLE_KEYS = {
    "topic",
    "trigger",
    "shop_id",
    "id",
    "state",
    "created_at",
    "edited_at",
    "customer_detail",
    "address",
    "is_gift_return",
    "refunds",
    "labels",
    "line_items",
    "exchanges",
    "label_updated_at",
}


@pytest.fixture(scope="module")
def seeded() -> World:
    return generate_world(now=datetime(2026, 3, 1, tzinfo=UTC))


def _bodies(world: World) -> list[dict[str, Any]]:
    events = [return_event(world, item, "return.updated") for item in world.returns.values()]
    return [
        json.loads(encode_body({"topic": e.topic, "trigger": e.trigger, **e.payload}))
        for e in events
    ]


def test_return_payloads_have_the_documented_shape(seeded: World) -> None:
    bodies = _bodies(seeded)
    for body, item in zip(bodies, seeded.returns.values(), strict=True):
        assert set(body) >= DOCUMENTED_EXAMPLE_KEYS
        assert "updated_at" not in body
        assert str(body["id"]) == item["id"]
        detail = body["customer_detail"]
        assert detail["email"] == item["customer"] and detail["first_name"] and detail["last_name"]
        order = seeded.find_order(item["order_name"])
        assert order is not None and body["address"]["zip"] == order["zip"]
        assert set(body["address"]) >= {"name", "address1", "city", "state", "zip", "country"}
        if item["label_status"] == "N/A":
            assert body["labels"] == []
        else:
            [label] = body["labels"]
            assert (label["status"], label["url"], label["rate"]) == (
                item["label_status"],
                item["label_url"],
                item["label_rate"],
            )
            assert label["updated_at"].endswith(".000Z")
            assert label["line_items"] == [int(x["line_item_id"]) for x in item["line_items"]]
        refunded = item["state"] == "closed" and float(item["refund"]) > 0
        assert bool(body["refunds"]) == refunded
    # Both id shapes, decided per return (the same return always gets the same one).
    assert {type(b["id"]) for b in bodies} == {int, str}
    assert all(isinstance(b["id"], int) == (int(b["id"]) % 2 == 0) for b in bodies)
    assert any(b["refunds"] for b in bodies) and any(b["labels"] for b in bodies)
    assert _bodies(seeded) == bodies  # deterministic


def test_one_person_one_name_across_addresses(seeded: World) -> None:
    names: dict[tuple[str, ...], set[tuple[str, str]]] = {}
    by_email = {e.casefold(): tuple(p) for p in seeded.customers for e in p}
    for item in seeded.returns.values():
        detail = return_payload(seeded, item)["customer_detail"]
        person = by_email[item["customer"].casefold()]
        names.setdefault(person, set()).add((detail["first_name"], detail["last_name"]))
    assert all(len(found) == 1 for found in names.values())


def test_older_shape_on_request(seeded: World) -> None:
    item = next(iter(seeded.returns.values()))
    body = return_payload(seeded, item, with_updated_at=True)
    assert body["updated_at"] == item["updated_at"] and body["id"] == item["id"]
