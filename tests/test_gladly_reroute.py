"""Re-routing open Gladly conversations: the REST client (auth, its 10-a-second window,
429s, typed errors), the webhook route (Basic auth, the secret header, PING, unknown
types, bad auth), and end to end: a sandbox Loop webhook pushes a refund past 7 days ->
the routing outcome changes -> the Gladly simulator sees the PATCH and the note, audited.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError

from loopdesk import store as db
from loopdesk.api.app import create_app
from loopdesk.errors import ConfigError, InvalidUpstreamData
from loopdesk.gladly.client import (
    GladlyAuthError,
    GladlyClient,
    GladlyNotFound,
    GladlyRejected,
    GladlyUnavailable,
    basic_auth,
)
from loopdesk.gladly.reroute import SANDBOX_WEBHOOK_SECRET, SECRET_HEADER
from loopdesk.routing.scan import scan
from loopdesk.sandbox.app import create_sandbox_app
from loopdesk.sandbox.gladly import (
    SANDBOX_API_TOKEN,
    SANDBOX_API_USER,
    GladlySimulator,
    inbox_id,
)
from loopdesk.sandbox.webhooks import configure_webhooks
from loopdesk.settings import Settings
from tests.routing_events_harness import database_url  # noqa: F401

LOOP_SECRET = "loop-webhook-secret-for-tests"
GLADLY_SECRET = "gladly-webhook-secret-for-tests"
BASE = "https://acme.gladly.test"
USER = "api-user@acme.test"
TOKEN = "gladly-api-token-for-tests-0042"
CONVERSATION = {
    "id": "HXRqKC5GSV-jAlq0-sxYTA",
    "customerId": "o2sg-TMTSD2rTwMuxzewbA",
    "inboxId": "E1nArq1uQAees_DogHB0MA",
    "agentId": "sHuXx-U3QqOmhvFusJGeBw",
    "status": "OPEN",
    "createdAt": "2016-01-02T00:10:00Z",
}


# --- the client -------------------------------------------------------------------------


@pytest.fixture
def mock() -> Any:
    with respx.mock(base_url=BASE + "/api/v1", assert_all_called=False) as router:
        yield router


@pytest.fixture
async def client() -> AsyncIterator[GladlyClient]:
    made = GladlyClient(base_url=BASE, user=USER, token=TOKEN, settings=Settings())
    yield made
    await made.aclose()


def simulated(sandbox: Any, settings: Settings | None = None) -> GladlyClient:
    """A client of the sandbox's Gladly simulator, in process."""
    simulator: GladlySimulator = sandbox.state.gladly
    return GladlyClient(
        base_url="http://sandbox/gladly",
        user=simulator.user,
        token=simulator.token,
        settings=settings or Settings(),
        transport=httpx.ASGITransport(app=sandbox),
    )


async def test_the_client_signs_in_with_the_api_user_and_token(
    client: GladlyClient, mock: respx.MockRouter
) -> None:
    route = mock.get(f"/conversations/{CONVERSATION['id']}").respond(json=CONVERSATION)
    found = await client.conversation(CONVERSATION["id"])
    sent = route.calls.last.request.headers["Authorization"]
    assert sent == "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
    assert sent == basic_auth(USER, TOKEN)
    assert (found.id, found.customer_id, found.inbox_id, found.status) == (
        CONVERSATION["id"],
        CONVERSATION["customerId"],
        CONVERSATION["inboxId"],
        "OPEN",
    )
    assert found.open


async def test_the_client_moves_to_an_inbox_and_adds_a_note(
    client: GladlyClient, mock: respx.MockRouter
) -> None:
    patched = mock.patch("/conversations/c1").respond(204)
    noted = mock.post("/conversations/c1/notes").respond(201, json={"id": "n1"})
    await client.assign_inbox("c1", "inbox-9")
    await client.add_note("c1", "why")
    assert json.loads(patched.calls.last.request.content) == {"assignee": {"inboxId": "inbox-9"}}
    assert json.loads(noted.calls.last.request.content) == {"content": {"body": "why"}}


async def test_the_client_reads_a_profiles_addresses_primary_first(
    client: GladlyClient, mock: respx.MockRouter
) -> None:
    mock.get("/customer-profiles/p1").respond(
        json={
            "id": "p1",
            "emails": [
                {"original": "Other@Example.com", "normalized": "other@example.com"},
                {"original": "Martha@Example.com", "primary": True},
                "not an entry",
            ],
        }
    )
    profile = await client.customer("p1")
    assert profile.emails == ("martha@example.com", "other@example.com")


async def test_the_client_reads_a_merged_profile_through_to_its_survivor(
    client: GladlyClient, mock: respx.MockRouter
) -> None:
    """Gladly answers 301 with `meta: {old, new}` for a profile merged into another;
    merges chain, a loop or a chain too long is an error, not an endless read."""
    mock.get("/customer-profiles/old").respond(301, json={"meta": {"old": "old", "new": "mid"}})
    mock.get("/customer-profiles/mid").respond(301, json={"meta": {"old": "mid", "new": "new"}})
    mock.get("/customer-profiles/new").respond(
        json={"id": "new", "emails": [{"original": "a@example.com", "primary": True}]}
    )
    profile = await client.customer("old")
    assert (profile.id, profile.emails) == ("new", ("a@example.com",))

    mock.get("/customer-profiles/x").respond(301, json={"meta": {"old": "x", "new": "y"}})
    mock.get("/customer-profiles/y").respond(301, json={"meta": {"old": "y", "new": "x"}})
    with pytest.raises(GladlyRejected) as looped:
        await client.customer("x")
    assert looped.value.status == 301
    mock.get("/customer-profiles/bare").respond(301, json={})
    with pytest.raises(GladlyRejected):
        await client.customer("bare")


@pytest.mark.usefixtures("instant_retries")
async def test_the_clients_errors_are_typed_and_worded_by_gladly(
    client: GladlyClient, mock: respx.MockRouter
) -> None:
    refusal = {"errors": [{"attr": "assignee.inboxId", "code": "not_exist", "detail": "gone"}]}
    mock.get("/conversations/missing").respond(404, json={"errors": [{"code": "not_exist"}]})
    mock.patch("/conversations/c1").respond(400, json=refusal)
    mock.get("/customer-profiles/p1").respond(401, json={"errors": [{"detail": "no"}]})
    down = mock.get("/conversations/down").respond(503)
    note = mock.post("/conversations/c1/notes").respond(500)
    mock.get("/conversations/html").respond(200, text="<html>")
    with pytest.raises(GladlyNotFound) as not_found:
        await client.conversation("missing")
    assert not_found.value.code == "gladly_not_found" and not_found.value.http_status == 404
    with pytest.raises(GladlyRejected) as rejected:
        await client.assign_inbox("c1", "nowhere")
    assert rejected.value.message == "assignee.inboxId: gone"
    assert rejected.value.details["errors"] == refusal["errors"]
    assert rejected.value.details["upstreamStatus"] == 400
    with pytest.raises(GladlyAuthError):
        await client.customer("p1")
    with pytest.raises(GladlyUnavailable) as unavailable:
        await client.conversation("down")
    assert down.call_count == 3  # a read is retried (3 attempts under instant_retries)
    with pytest.raises(GladlyUnavailable) as lost:
        await client.add_note("c1", "a note")
    # A note is never repeated: a second one would show twice. Whether it landed is unknown.
    assert note.call_count == 1 and lost.value.details["outcomeUnknown"] is True
    assert "outcomeUnknown" not in unavailable.value.details
    with pytest.raises(InvalidUpstreamData):
        await client.conversation("html")
    assert TOKEN not in str(rejected.value.to_body())


async def test_the_client_keeps_to_ten_requests_a_second() -> None:
    sandbox = create_sandbox_app(Settings(sandbox_rate_limit_per_minute=0))
    simulator: GladlySimulator = sandbox.state.gladly
    conversation = simulator.open_conversation("pace@example.com")
    client = simulated(sandbox)
    started = time.monotonic()
    try:
        found = await asyncio.gather(*(client.conversation(conversation["id"]) for _ in range(25)))
    finally:
        await client.aclose()
    elapsed = time.monotonic() - started
    assert all(f.id == conversation["id"] for f in found)
    seen = simulator.requests("GET")
    assert len(seen) == 25 and {r.status for r in seen} == {200}  # never a 429
    times = sorted(r.at for r in seen)
    busiest = max(sum(1 for t in times if s <= t < s + timedelta(seconds=1)) for s in times)
    assert busiest <= 10
    assert elapsed >= 2.0  # 25 requests at 10 a second: the window did hold them back


async def test_the_simulator_limits_and_the_client_honours_its_retry_after() -> None:
    sandbox = create_sandbox_app(Settings(sandbox_rate_limit_per_minute=0))
    simulator: GladlySimulator = sandbox.state.gladly
    conversation = simulator.open_conversation("busy@example.com")
    path = f"/gladly/api/v1/conversations/{conversation['id']}"
    auth = {"Authorization": basic_auth(simulator.user, simulator.token)}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox), base_url="http://sandbox"
    ) as raw:
        burst = [(await raw.get(path, headers=auth)) for _ in range(11)]
        assert [r.status_code for r in burst] == [200] * 10 + [429]
        assert burst[-1].headers["Retry-After"] == "1"
        assert burst[-1].headers["Ratelimit-Limit-Second"] == "10"
        assert (await raw.get(path)).status_code == 401  # no credentials
    client = simulated(sandbox)
    started = time.monotonic()
    try:
        found = await client.conversation(conversation["id"])
    finally:
        await client.aclose()
    assert found.id == conversation["id"]
    assert time.monotonic() - started >= 0.9  # waited out the simulator's Retry-After
    assert [r.status for r in simulator.requests("GET")][-2:] == [429, 200]


def test_credentials_are_all_or_nothing() -> None:
    assert GladlyClient.from_settings(Settings()) is None
    with pytest.raises(ConfigError) as missing:
        GladlyClient.from_settings(Settings(gladly_base_url=BASE, gladly_api_user=USER))
    assert missing.value.details["missing"] == ["LOOPDESK_GLADLY_API_TOKEN"]
    made = GladlyClient.from_settings(
        Settings(gladly_base_url=BASE + "/api/v1/", gladly_api_user=USER, gladly_api_token=TOKEN)
    )
    assert made is not None and made.base_url == BASE


def test_queue_inboxes_read_from_the_environment_and_the_toml(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOOPDESK_GLADLY_QUEUE_INBOXES", "returns-priority = P1, returns=R1,")
    assert Settings().gladly_queue_inboxes == {"returns-priority": "P1", "returns": "R1"}
    monkeypatch.delenv("LOOPDESK_GLADLY_QUEUE_INBOXES")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "loopdesk.toml").write_text('[gladly_queue_inboxes]\n"returns-priority" = "P2"\n')
    assert Settings().gladly_queue_inboxes == {"returns-priority": "P2"}
    for bad in ("returns", "=P1", "returns=", "a=1,a=2"):
        with pytest.raises(ValidationError):
            Settings(gladly_queue_inboxes=bad)


# --- the webhook route ------------------------------------------------------------------


def _ping() -> bytes:
    return json.dumps({"id": "p1", "type": "PING", "timestamp": "2026-01-01T00:00:00Z"}).encode()


async def _post(app: Any, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://loopdesk"
    ) as http:
        return await http.post("/webhooks/gladly", content=body, headers=headers or {})


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'gladly.db'}"


async def test_basic_auth_guards_the_webhook(db_url: str) -> None:
    settings = Settings(
        database_url=db_url, gladly_webhook_user="gladly", gladly_webhook_password="pw-123"
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        ok = await _post(app, _ping(), _basic("gladly", "pw-123"))
        assert ok.status_code == 200
        assert ok.json() == {"received": True, "type": "PING", "eventId": None, "result": "pong"}
        for headers in (
            _basic("gladly", "wrong"),
            _basic("other", "pw-123"),
            {"Authorization": "Basic not-base64!"},
            {SECRET_HEADER: SANDBOX_WEBHOOK_SECRET},  # the sandbox default no longer applies
            {},
        ):
            refused = await _post(app, _ping(), headers)
            assert refused.status_code == 401, headers
            assert refused.json()["error"]["code"] == "unauthorized"


async def test_the_secret_header_guards_the_webhook_and_both_must_match_when_set(
    db_url: str,
) -> None:
    app = create_app(Settings(database_url=db_url, gladly_webhook_secret=GLADLY_SECRET))
    async with app.router.lifespan_context(app):
        assert (await _post(app, _ping(), {SECRET_HEADER: GLADLY_SECRET})).status_code == 200
        assert (await _post(app, _ping(), {SECRET_HEADER: "nope"})).status_code == 401
        assert (await _post(app, _ping())).status_code == 401
    both = Settings(
        database_url=db_url,
        gladly_webhook_secret=GLADLY_SECRET,
        gladly_webhook_user="gladly",
        gladly_webhook_password="pw-123",
    )
    app = create_app(both)
    async with app.router.lifespan_context(app):
        full = {SECRET_HEADER: GLADLY_SECRET, **_basic("gladly", "pw-123")}
        assert (await _post(app, _ping(), full)).status_code == 200
        assert (await _post(app, _ping(), {SECRET_HEADER: GLADLY_SECRET})).status_code == 401
        assert (await _post(app, _ping(), _basic("gladly", "pw-123"))).status_code == 401


async def test_webhook_outside_sandbox_mode_needs_its_own_credentials(db_url: str) -> None:
    """With a Loop token: no Gladly API configured is a 404; an API without webhook
    credentials refuses every event, the public sandbox secret included."""
    app = create_app(Settings(database_url=db_url, loop_api_token="loop-token-for-tests"))
    async with app.router.lifespan_context(app):
        missing = await _post(app, _ping(), {SECRET_HEADER: SANDBOX_WEBHOOK_SECRET})
        assert missing.status_code == 404
        assert "LOOPDESK_GLADLY_API_TOKEN" in missing.json()["error"]["message"]
    app = create_app(
        Settings(
            database_url=db_url,
            loop_api_token="loop-token-for-tests",
            gladly_base_url=BASE,
            gladly_api_user=USER,
            gladly_api_token=TOKEN,
        )
    )
    async with app.router.lifespan_context(app):
        refused = await _post(app, _ping(), {SECRET_HEADER: SANDBOX_WEBHOOK_SECRET})
        assert refused.status_code == 401
        assert "LOOPDESK_GLADLY_WEBHOOK_SECRET" in refused.json()["error"]["message"]
    with pytest.raises(ConfigError):
        create_app(Settings(database_url=db_url, gladly_api_user=USER))


async def test_unknown_events_are_acknowledged_and_bad_bodies_refused(db_url: str) -> None:
    app = create_app(Settings(database_url=db_url, gladly_webhook_secret=GLADLY_SECRET))
    auth = {SECRET_HEADER: GLADLY_SECRET}
    async with app.router.lifespan_context(app):
        unknown = {"id": "e1", "type": "AGENT_STATUS/UPDATED", "content": {"agentId": "a"}}
        answer = await _post(app, json.dumps(unknown).encode(), auth)
        assert answer.status_code == 200
        assert answer.json()["result"] == "ignored" and answer.json()["eventId"] is None
        created = {"id": "e2", "type": "CONVERSATION/CREATED", "content": {"customerId": "c"}}
        for body in (b"not json", b"[1]", b'{"id": "x"}', json.dumps(created).encode()):
            bad = await _post(app, body, auth)
            assert bad.status_code == 422, body
            assert bad.json()["error"]["code"] == "invalid_input"
        async with app.state.store.reader() as session:
            assert await db.gladly_event_counts(session) == {
                "received": 0,
                "applied": 0,
                "failed": 0,
            }


# --- end to end, in the sandbox ----------------------------------------------------------


@pytest.fixture
async def service(
    database_url: str,  # noqa: F811
) -> AsyncIterator[tuple[Any, httpx.AsyncClient, dict[str, str]]]:
    settings = Settings(
        database_url=database_url,
        loop_webhook_secret=LOOP_SECRET,
        gladly_webhook_secret=GLADLY_SECRET,
        routing_scan_interval_s=0,
        sandbox_rate_limit_per_minute=0,
        sandbox_webhooks_to_self=False,
        api_key_cache_s=0,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with app.state.store.session() as session:
            key = await db.create_api_key(session, "agent-console")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://loopdesk") as client:
            sandbox = app.state.upstream.sandbox
            # Loop's webhooks and Gladly's both come to our own routes.
            configure_webhooks(sandbox, "http://loopdesk/webhooks/loop", LOOP_SECRET, client)
            sandbox.state.gladly.configure(
                "http://loopdesk/webhooks/gladly",
                headers={SECRET_HEADER: GLADLY_SECRET},
                client=client,
                retry_delays=(),
            )
            yield app, client, {"Authorization": f"Bearer {key}"}


def _waiting_return(world: Any) -> tuple[str, str]:
    """A seeded customer (one address) whose only unfinished return is `open`, with its
    label on the way to the warehouse since 12 days: (address, return id)."""
    for addresses in world.customers:
        if len(addresses) != 1:
            continue
        address = addresses[0].lower()
        mine = [r for r in world.returns.values() if str(r["customer"]).lower() == address]
        unfinished = [r for r in mine if r["state"] in ("open", "review")]
        if len(unfinished) == 1 and unfinished[0]["state"] == "open":
            item = unfinished[0]
            item["label_status"] = "in_transit"
            item["label_updated_at"] = _iso(datetime.now(UTC) - timedelta(days=12))
            return str(item["customer"]), str(item["id"])
    raise AssertionError("the seeded world has a customer with one open return")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


async def _until(check: Any, seconds: float = 10.0) -> None:
    """Wait until `check()` (a function, or a coroutine function) holds."""
    deadline = time.monotonic() + seconds
    while True:
        held = check()
        if asyncio.iscoroutine(held):
            held = await held
        if held:
            return
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


async def _moves(client: httpx.AsyncClient, auth: dict[str, str]) -> list[dict[str, Any]]:
    answer = await client.get("/v1/audit", params={"action": "gladly.move"}, headers=auth)
    assert answer.status_code == 200
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def _audited_moves(
    client: httpx.AsyncClient, auth: dict[str, str], count: int
) -> list[dict[str, Any]]:
    """The moves once `count` are audited: a move's audit entry follows its note."""

    async def audited() -> bool:
        return len(await _moves(client, auth)) >= count

    await _until(audited)
    return await _moves(client, auth)


async def test_a_refund_pushed_past_a_week_by_a_loop_webhook_moves_the_conversation(
    service: tuple[Any, httpx.AsyncClient, dict[str, str]],
) -> None:
    app, client, auth = service
    sandbox = app.state.upstream.sandbox
    simulator: GladlySimulator = sandbox.state.gladly
    email, return_id = _waiting_return(sandbox.state.world)

    # The customer writes in; the conversation lands in the Returns inbox, where their
    # open return belongs: loopdesk routes them and leaves it there.
    opened = await client.post(
        "/sandbox/_sandbox/gladly/conversations",
        json={"email": email, "inbox": "returns"},
        headers=auth,
    )
    assert opened.status_code == 201
    conversation_id = opened.json()["id"]
    await simulator.drained()
    await app.state.services.gladly.settled()  # applied after the answer when slow
    assert [d.status for d in simulator.deliveries] == [200, 200]
    assert simulator.requests("PATCH") == [] and await _moves(client, auth) == []
    async with app.state.store.reader() as session:
        events = await db.gladly_event_counts(session)
        row = await db.get_gladly_conversation(session, conversation_id)
    assert events == {"received": 0, "applied": 2, "failed": 0}
    assert row is not None and row.emails == [email.lower()]
    assert row.inbox_id == inbox_id("returns")

    # The label reached the warehouse 9 days ago; Loop says so in a webhook.
    item = sandbox.state.world.returns[return_id]
    item["label_status"] = "delivered"
    item["label_updated_at"] = _iso(datetime.now(UTC) - timedelta(days=9))
    touched = await client.post(f"/sandbox/_sandbox/returns/{return_id}/touch", headers=auth)
    assert touched.status_code == 200
    await sandbox.state.webhook_tasks_drained()
    await app.state.services.webhooks.settled()  # applied after its answer

    await _until(lambda: len(simulator.notes(conversation_id)) == 1)
    (patch,) = simulator.requests("PATCH")
    assert patch.path == f"/conversations/{conversation_id}" and patch.status == 204
    assert patch.body == {"assignee": {"inboxId": inbox_id("returns-priority")}}
    assert simulator.conversations[conversation_id]["inboxId"] == inbox_id("returns-priority")
    (note,) = simulator.notes(conversation_id)
    assert "queue returns-priority" in note and "rule refund-waiting-a-week" in note
    assert "refund_pending_days = 9" in note and "refund_pending = true" in note
    (move,) = await _audited_moves(client, auth, 1)
    assert move["ok"] is True and move["key"] == "gladly"
    assert move["inputs"] == {
        "conversationId": conversation_id,
        "customerId": simulator.conversations[conversation_id]["customerId"],
        "fromInboxId": inbox_id("returns"),
        "toInboxId": inbox_id("returns-priority"),
        "queue": "returns-priority",
        "rule": "refund-waiting-a-week",
        "cause": "routing.changed",
    }
    assert move["result"]["body"]["note"] is True

    # The customer writes again: the conversation is where it belongs, nothing moves.
    again = await client.post(
        f"/sandbox/_sandbox/gladly/conversations/{conversation_id}/messages",
        json={"text": "any news?"},
        headers=auth,
    )
    assert again.status_code == 201
    await simulator.drained()
    assert len(simulator.requests("PATCH")) == 1 and len(await _moves(client, auth)) == 1
    assert simulator.deliveries[-1].status == 200


async def test_a_new_conversation_in_the_wrong_inbox_is_moved_at_once_and_a_scan_moves_later(
    service: tuple[Any, httpx.AsyncClient, dict[str, str]],
) -> None:
    """On CONVERSATION/CREATED the conversation goes where its customer's routing says;
    a refund that crosses 7 days by time alone (a label update, then the scan days later)
    moves it again."""
    app, client, auth = service
    sandbox = app.state.upstream.sandbox
    simulator: GladlySimulator = sandbox.state.gladly
    email, return_id = _waiting_return(sandbox.state.world)
    conversation = simulator.open_conversation(email, inbox="general")
    status = await simulator.send(simulator.conversation_created(conversation))
    assert status == 200
    (first,) = simulator.requests("PATCH")
    assert first.body == {"assignee": {"inboxId": inbox_id("returns")}}
    assert "rule open-return" in simulator.notes(conversation["id"])[0]

    delivered = await client.post(
        f"/sandbox/_sandbox/returns/{return_id}/label",
        json={"label_status": "delivered"},
        headers=auth,
    )
    assert delivered.status_code == 200
    await sandbox.state.webhook_tasks_drained()
    await app.state.services.webhooks.settled()  # applied after its answer
    gladly = app.state.services.gladly
    assert await gladly.sweep() == []  # delivered today: still the open-return queue
    assert len(simulator.requests("PATCH")) == 1

    later = await scan(app.state.services.rerouter, now=datetime.now(UTC) + timedelta(days=9))
    assert [c.new.queue for c in later.changes] == ["returns-priority"]
    await _until(lambda: len(simulator.requests("PATCH")) == 2)
    assert simulator.requests("PATCH")[-1].body == {
        "assignee": {"inboxId": inbox_id("returns-priority")}
    }
    await _until(lambda: len(simulator.notes(conversation["id"])) == 2)
    moves = await _audited_moves(client, auth, 2)
    assert [m["inputs"]["cause"] for m in moves] == ["routing.changed", "CONVERSATION/CREATED"]
    assert await gladly.sweep() == []  # placed: nothing left to do


async def test_a_closed_conversation_is_never_moved(
    service: tuple[Any, httpx.AsyncClient, dict[str, str]],
) -> None:
    app, client, auth = service
    sandbox = app.state.upstream.sandbox
    simulator: GladlySimulator = sandbox.state.gladly
    email, return_id = _waiting_return(sandbox.state.world)
    conversation = simulator.open_conversation(email, inbox="returns")
    assert await simulator.send(simulator.conversation_created(conversation)) == 200
    simulator.conversations[conversation["id"]]["status"] = "CLOSED"
    item = sandbox.state.world.returns[return_id]
    item["label_status"] = "delivered"
    item["label_updated_at"] = _iso(datetime.now(UTC) - timedelta(days=9))
    await client.post(f"/sandbox/_sandbox/returns/{return_id}/touch", headers=auth)
    await sandbox.state.webhook_tasks_drained()
    await app.state.services.gladly.settled()
    await app.state.services.webhooks.settled()  # Loop's event applied, its customer re-routed

    async def closed() -> bool:
        async with app.state.store.reader() as session:
            row = await db.get_gladly_conversation(session, conversation["id"])
        return row is not None and row.status == "CLOSED" and row.outcome_at is not None

    await _until(closed)  # the change's sweep looked at it, and let it be
    assert await app.state.services.gladly.sweep() == []
    assert simulator.requests("PATCH") == [] and await _moves(client, auth) == []


@pytest.mark.usefixtures("instant_retries")
async def test_an_event_gladly_cannot_serve_now_is_kept_and_applied_later(
    service: tuple[Any, httpx.AsyncClient, dict[str, str]],
) -> None:
    """Gladly's API down while an event is applied: the webhook is still answered 2xx,
    the event stays `received` and is applied once Gladly is back."""
    app, client, auth = service
    sandbox = app.state.upstream.sandbox
    simulator: GladlySimulator = sandbox.state.gladly
    email, _ = _waiting_return(sandbox.state.world)
    conversation = simulator.open_conversation(email, inbox="general")
    sandbox.state.faults.add(path_contains="/gladly/api/v1/", status=503)
    event = simulator.conversation_created(conversation)
    answer = await _post(app, json.dumps(event).encode(), {SECRET_HEADER: GLADLY_SECRET})
    assert answer.status_code == 200 and answer.json()["result"] == "deferred"
    again = await _post(app, json.dumps(event).encode(), {SECRET_HEADER: GLADLY_SECRET})
    assert again.json()["result"] == "duplicate"
    async with app.state.store.reader() as session:
        assert (await db.gladly_event_counts(session))["received"] == 1
    sandbox.state.faults.clear()
    gladly = app.state.services.gladly
    assert await gladly.retry_due(datetime.now(UTC) + timedelta(hours=1)) == 1
    assert simulator.conversations[conversation["id"]]["inboxId"] == inbox_id("returns")
    async with app.state.store.reader() as session:
        assert await db.gladly_event_counts(session) == {"received": 0, "applied": 1, "failed": 0}
    (move,) = await _audited_moves(client, auth, 1)
    assert move["ok"] is True


async def test_the_demo_wires_the_simulator_to_the_service(db_url: str) -> None:
    """`serve` in sandbox mode: the simulator's webhooks reach `/webhooks/gladly` with
    the sandbox's public secret, and moves go to the simulator's inboxes."""
    app = create_app(Settings(database_url=db_url, sandbox_rate_limit_per_minute=0))
    async with app.router.lifespan_context(app):
        simulator: GladlySimulator = app.state.upstream.sandbox.state.gladly
        assert (simulator.user, simulator.token) == (SANDBOX_API_USER, SANDBOX_API_TOKEN)
        assert simulator.webhook is not None
        assert simulator.webhook.headers == {SECRET_HEADER: SANDBOX_WEBHOOK_SECRET}
        assert await simulator.send(simulator.event("PING"), retry=False) == 200


async def test_a_closed_event_takes_the_conversation_out_of_the_sweep_until_it_reopens(
    service: tuple[Any, httpx.AsyncClient, dict[str, str]],
) -> None:
    """CONVERSATION/CLOSED marks the conversation closed without asking Gladly, so a
    routing change neither reads nor moves it; CONVERSATION/REOPENED places it again."""
    app, client, auth = service
    sandbox = app.state.upstream.sandbox
    simulator: GladlySimulator = sandbox.state.gladly
    email, return_id = _waiting_return(sandbox.state.world)
    conversation = simulator.open_conversation(email, inbox="returns")
    assert await simulator.send(simulator.conversation_created(conversation)) == 200
    simulator.close(conversation["id"])
    closed = simulator.conversation_event("CONVERSATION/CLOSED", conversation)
    assert await simulator.send(closed) == 200
    async with app.state.store.reader() as session:
        row = await db.get_gladly_conversation(session, conversation["id"])
    assert row is not None and row.status == "CLOSED"

    reads_before = len(simulator.requests("GET", f"/conversations/{conversation['id']}"))
    item = sandbox.state.world.returns[return_id]
    item["label_status"] = "delivered"
    item["label_updated_at"] = _iso(datetime.now(UTC) - timedelta(days=9))
    await client.post(f"/sandbox/_sandbox/returns/{return_id}/touch", headers=auth)
    await sandbox.state.webhook_tasks_drained()
    await app.state.services.webhooks.settled()  # applied after its answer
    assert await app.state.services.gladly.sweep() == []
    assert len(simulator.requests("GET", f"/conversations/{conversation['id']}")) == reads_before
    assert simulator.requests("PATCH") == [] and await _moves(client, auth) == []

    simulator.conversations[conversation["id"]]["status"] = "OPEN"
    reopened = simulator.conversation_event("CONVERSATION/REOPENED", conversation)
    assert await simulator.send(reopened) == 200
    (patch,) = simulator.requests("PATCH")
    assert patch.body == {"assignee": {"inboxId": inbox_id("returns-priority")}}
    (move,) = await _audited_moves(client, auth, 1)
    assert move["inputs"]["cause"] == "CONVERSATION/REOPENED"


async def test_a_conversation_of_a_merged_profile_is_routed_by_the_survivors_addresses(
    service: tuple[Any, httpx.AsyncClient, dict[str, str]],
) -> None:
    """An event naming a profile merged away: the 301 is followed, the survivor's
    addresses route the conversation and the survivor's id is kept."""
    app, _client, _auth = service
    sandbox = app.state.upstream.sandbox
    simulator: GladlySimulator = sandbox.state.gladly
    email, _ = _waiting_return(sandbox.state.world)
    old = simulator.customer_for("someone-new@example.net")
    survivor = simulator.customer_for(email)
    conversation = simulator.open_conversation("someone-new@example.net", inbox="general")
    event = simulator.conversation_created(conversation)  # names the old profile
    simulator.merge(old["id"], survivor["id"])
    assert await simulator.send(event) == 200
    reads = [r.status for r in simulator.requests("GET", "/customer-profiles/")]
    assert reads == [301, 200]
    (patch,) = simulator.requests("PATCH")
    assert patch.body == {"assignee": {"inboxId": inbox_id("returns")}}
    async with app.state.store.reader() as session:
        row = await db.get_gladly_conversation(session, conversation["id"])
    assert row is not None and row.gladly_customer_id == survivor["id"]
    assert email.lower() in row.emails
