"""Loop's webhooks API: the sandbox's validation, `webhooks subscribe|list|unsubscribe`
against a running `loopdesk sandbox`, and webhooks reaching a subscribed URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from bench.server import free_port, wait_until_up

from loopdesk.domain.webhooks import APPLIED_SUBSCRIPTIONS, signature_valid
from loopdesk.loop.returns import LoopReturnsClient
from loopdesk.loop.webhooks_api import LoopWebhooksApi
from loopdesk.sandbox.app import create_sandbox_app
from loopdesk.sandbox.seed import generate_world
from loopdesk.settings import Settings

TOKEN = "subscriptions-token-0123"
SECRET = "subscription-secret-0123"
LOOP = {"X-Authorization": TOKEN}
HOOK = "https://desk.example/webhooks/loop"


# --- the sandbox's webhooks API, in-process ----------------------------------------


@pytest.fixture
async def sandbox() -> AsyncIterator[httpx.AsyncClient]:
    app = create_sandbox_app(Settings(sandbox_rate_limit_per_minute=0))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sandbox", headers=LOOP
    ) as client:
        yield client


async def test_create_list_update_delete(sandbox: httpx.AsyncClient) -> None:
    body = {"topic": "return", "trigger": "return.created", "url": HOOK}
    created = await sandbox.post("/api/v1/webhooks", json=body)
    assert created.status_code == 201
    item = created.json()
    assert item == {**body, "id": item["id"], "shop_id": item["shop_id"], "status": "inactive"}
    assert (await sandbox.get("/api/v1/webhooks")).json() == {"webhooks": [item]}
    assert (await sandbox.get("/api/2026-07/webhooks")).json() == {"webhooks": [item]}
    put = await sandbox.put(f"/api/v1/webhooks/{item['id']}", json={"status": "active"})
    assert put.status_code == 204 and put.content == b""
    assert (await sandbox.get(f"/api/v1/webhooks/{item['id']}")).json()["status"] == "active"
    deleted = await sandbox.delete(f"/api/v1/webhooks/{item['id']}")
    assert deleted.status_code == 204
    for method in ("GET", "PUT", "DELETE"):
        gone = await sandbox.request(method, f"/api/v1/webhooks/{item['id']}", json={})
        assert gone.status_code == 404 and gone.json() == {"errors": {"code": "NOT_FOUND"}}
    assert (await sandbox.get("/api/v1/webhooks")).json() == {"webhooks": []}


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            {"topic": "refund", "trigger": "x", "url": HOOK},
            "topic",
            "Must be one of the following values:return,label,restock",
        ),
        ({"trigger": "return.created", "url": HOOK}, "topic", "The topic field is required."),
        (
            {"topic": "return", "trigger": "label.updated", "url": HOOK},
            "trigger",
            "Must be one of the following values:return.created,return.updated,return.closed",
        ),
        ({"topic": "label", "url": HOOK}, "trigger", "The trigger field is required."),
        (
            {"topic": "label", "trigger": "label.updated", "url": "ftp://x"},
            "url",
            "The url must be a valid URL.",
        ),
        (
            {"topic": "label", "trigger": "label.updated", "url": HOOK, "status": "on"},
            "status",
            "Must be one of the following values:active,inactive",
        ),
    ],
)
async def test_validation_is_laravels_422(
    sandbox: httpx.AsyncClient, body: dict[str, Any], field: str, message: str
) -> None:
    response = await sandbox.post("/api/v1/webhooks", json=body)
    assert response.status_code == 422
    assert response.json()["errors"][field] == [message]
    assert (await sandbox.get("/api/v1/webhooks")).json() == {"webhooks": []}


async def test_webhooks_api_needs_a_loop_token(sandbox: httpx.AsyncClient) -> None:
    response = await sandbox.get("/api/v1/webhooks", headers={"X-Authorization": ""})
    assert response.status_code == 401


async def test_client_subscribe_is_idempotent_and_reactivates() -> None:
    settings = Settings(sandbox_rate_limit_per_minute=0)
    transport = httpx.ASGITransport(app=create_sandbox_app(settings))
    client = LoopReturnsClient(
        base_url="http://sandbox", token=TOKEN, settings=settings, transport=transport
    )
    api = LoopWebhooksApi.of(client)
    sandbox = httpx.AsyncClient(transport=transport, base_url="http://sandbox", headers=LOOP)
    async with client, sandbox:
        first = await api.subscribe(HOOK)
        assert [(r.topic, r.trigger) for r in first] == list(APPLIED_SUBSCRIPTIONS)
        assert {r.outcome for r in first} == {"created"}
        stored = await api.subscriptions()
        assert len(stored) == len(APPLIED_SUBSCRIPTIONS)
        assert {w["status"] for w in stored} == {"active"}
        # someone turned one off in Loop's admin: the next run turns it back on
        off = stored[0]
        await sandbox.put(f"/api/v1/webhooks/{off['id']}", json={"status": "inactive"})
        second = await api.subscribe(HOOK)
        outcomes = {(r.trigger, r.outcome) for r in second}
        assert (off["trigger"], "reactivated") in outcomes
        assert {o for _, o in outcomes} == {"exists", "reactivated"}
        assert len(await api.subscriptions()) == len(APPLIED_SUBSCRIPTIONS)
        assert {w["status"] for w in await api.subscriptions()} == {"active"}
        # another URL is a separate set of subscriptions
        await api.subscribe("https://other.example/hook")
        assert len(await api.subscriptions()) == 2 * len(APPLIED_SUBSCRIPTIONS)


# --- the CLI and deliveries against a running `loopdesk sandbox` --------------------


class Receiver(ThreadingHTTPServer):
    """A webhook receiver on a free port, recording what it gets."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/webhooks/loop"

    def wait_for(self, count: int, seconds: float = 10) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + seconds
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.server.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def running_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "LOOPDESK_SANDBOX_TOKEN": TOKEN,
        "LOOPDESK_LOOP_WEBHOOK_SECRET": SECRET,
        "LOOPDESK_SANDBOX_RATE_LIMIT_PER_MINUTE": "0",
    }
    env.pop("LOOPDESK_SANDBOX_DATA", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopdesk", "sandbox", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
        cwd=tmp_path_factory.mktemp("sandbox"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/_sandbox/health", proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def cli(base: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "LOOPDESK_LOOP_API_TOKEN": TOKEN,
        "LOOPDESK_LOOP_BASE_URL": base,
    }
    return subprocess.run(
        [sys.executable, "-m", "loopdesk", "webhooks", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _clear(base: str) -> None:
    for hook in httpx.get(f"{base}/api/v1/webhooks", headers=LOOP).json()["webhooks"]:
        httpx.delete(f"{base}/api/v1/webhooks/{hook['id']}", headers=LOOP)


def test_cli_subscribe_twice_list_unsubscribe(running_sandbox: str) -> None:
    base = running_sandbox
    _clear(base)
    first = cli(base, "subscribe", "--url", HOOK)
    assert first.returncode == 0, first.stderr
    assert {r["outcome"] for r in json.loads(first.stdout)} == {"created"}
    again = cli(base, "subscribe", "--url", HOOK)
    assert again.returncode == 0, again.stderr
    assert {r["outcome"] for r in json.loads(again.stdout)} == {"exists"}
    other = cli(base, "subscribe", "--url", "https://other.example/hook")
    assert other.returncode == 0, other.stderr

    listed = cli(base, "list")
    assert listed.returncode == 0, listed.stderr
    hooks = json.loads(listed.stdout)
    assert len(hooks) == 2 * len(APPLIED_SUBSCRIPTIONS)
    mine = json.loads(cli(base, "list", "--url", HOOK).stdout)
    assert {(h["topic"], h["trigger"]) for h in mine} == set(APPLIED_SUBSCRIPTIONS)
    assert {h["status"] for h in mine} == {"active"}

    one = cli(base, "unsubscribe", str(mine[0]["id"]))
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout) == {"removed": [str(mine[0]["id"])]}
    missing = cli(base, "unsubscribe", str(mine[0]["id"]))
    assert missing.returncode == 1 and missing.stdout == ""
    assert "no webhook subscription with id" in missing.stderr

    by_url = cli(base, "unsubscribe", "--url", HOOK)
    assert by_url.returncode == 0, by_url.stderr
    assert len(json.loads(by_url.stdout)["removed"]) == len(APPLIED_SUBSCRIPTIONS) - 1
    left = json.loads(cli(base, "list").stdout)
    assert {h["url"] for h in left} == {"https://other.example/hook"}
    none_left = cli(base, "unsubscribe", "--url", HOOK)
    # Already as asked: nothing removed, and no failure (safe to run twice).
    assert none_left.returncode == 0 and "no webhook subscriptions" in none_left.stderr
    assert json.loads(none_left.stdout) == {"removed": []}


@pytest.mark.parametrize(
    "args",
    [
        ["subscribe", "--url", "not a url"],
        ["unsubscribe"],
        ["unsubscribe", "7", "--url", HOOK],
    ],
)
def test_cli_usage_errors(running_sandbox: str, args: list[str]) -> None:
    result = cli(running_sandbox, *args)
    assert result.returncode == 2 and result.stdout == ""
    assert "error" in result.stderr


def test_cli_reports_loop_failures(running_sandbox: str) -> None:
    base = running_sandbox
    fault = {"path_contains": "/webhooks", "status": 401}
    assert httpx.post(f"{base}/_sandbox/faults", json=fault).status_code == 201
    try:
        result = cli(base, "list")
    finally:
        httpx.delete(f"{base}/_sandbox/faults")
    assert result.returncode == 1 and result.stdout == ""
    assert "Unauthorized" in result.stderr and TOKEN not in result.stderr


def _open_return_ids() -> list[str]:
    # The standalone sandbox seeds the same world from the default seed.
    settings = Settings()
    world = generate_world(settings.sandbox_seed, settings.sandbox_customers)
    return [rid for rid, item in world.returns.items() if item.get("state") == "open"]


def test_subscribed_url_receives_signed_webhooks(running_sandbox: str, receiver: Receiver) -> None:
    base = running_sandbox
    _clear(base)
    subscribed = cli(base, "subscribe", "--url", receiver.url)
    assert subscribed.returncode == 0, subscribed.stderr
    # an inactive subscription elsewhere gets nothing
    inactive = {"topic": "return", "trigger": "return.closed", "url": receiver.url + "/off"}
    assert httpx.post(f"{base}/api/v1/webhooks", json=inactive, headers=LOOP).status_code == 201

    return_id = _open_return_ids()[0]
    closed = httpx.post(f"{base}/api/v1/warehouse/return/{return_id}/close", headers=LOOP)
    assert closed.status_code == 200, closed.text
    got = receiver.wait_for(2)
    assert [json.loads(body)["trigger"] for _, body in got] == ["return.updated", "return.closed"]
    for headers, body in got:
        assert signature_valid(body, headers.get("x-loop-signature"), SECRET)
        assert headers["content-type"] == "application/json"
        event = json.loads(body)
        assert event["topic"] == "return" and str(event["id"]) == return_id
        assert event["state"] == "closed"

    label = {"label_status": "in_transit"}
    moved = httpx.post(f"{base}/_sandbox/returns/{return_id}/label", json=label)
    assert moved.status_code == 200
    got = receiver.wait_for(3)
    headers, body = got[2]
    assert json.loads(body)["trigger"] == "label.updated"
    assert signature_valid(body, headers.get("x-loop-signature"), SECRET)

    # unsubscribed: nothing more arrives
    assert cli(base, "unsubscribe", "--url", receiver.url).returncode == 0
    httpx.post(f"{base}/_sandbox/returns/{return_id}/touch")
    time.sleep(0.5)
    assert len(receiver.received) == 3
