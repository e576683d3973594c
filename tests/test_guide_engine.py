"""The conversation engine over HTTP: the contract's shape, state kept in the store so
any worker takes the next message, topic changes, hand-offs and their routing decision.
The scripted conversations of every flow are in `tests/guides/`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopdesk import store as db
from loopdesk.api.app import create_app
from loopdesk.settings import Settings
from tests.routing_data import raw_order, raw_return, write_world

KEY = "test-guide-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
ANSWER_KEYS = {"reply", "intent", "links", "quickReplies", "state", "handoff"}
HANDOFF_KEYS = {"summary", "queue", "priority", "facts"}


def world(path: Path) -> Path:
    now = datetime.now(UTC)
    returns = [raw_return("6001", now, customer="jane@example.com", label_status="in_transit")]
    orders = [
        raw_order("#7002", ["DELIVERED"], customer="jane@example.com", now=now),
        raw_order("#7001", ["SHIPMENT_STALLED"], customer="sam@example.com", now=now),
    ]
    return write_world(path, returns, orders)


def settings(tmp_path: Path) -> Settings:
    data = tmp_path / "world.json"
    if not data.exists():
        world(data)
    return Settings(
        api_key=KEY,
        sandbox_rate_limit_per_minute=0,
        sandbox_data=data,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/guide.db",
    )


@asynccontextmanager
async def worker(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """One service process: its own app (and sandbox), the shared database."""
    app = create_app(settings(tmp_path))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        yield c


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with worker(tmp_path) as c:
        yield c


async def say(
    client: httpx.AsyncClient,
    text: str,
    *,
    conversation: str = "c-1",
    channel: str = "chat",
    email: str = "jane@example.com",
    **customer: Any,
) -> dict[str, Any]:
    body = {
        "conversationId": conversation,
        "channel": channel,
        "text": text,
        "customer": {"emails": [email], **customer},
    }
    response = await client.post("/v1/guide/messages", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert set(answer) >= ANSWER_KEYS
    return answer


async def test_a_return_link_over_two_workers(tmp_path: Path) -> None:
    """The state lives in the store: the worker that takes the second message knows the
    first one asked for a ZIP, and the link is Loop's."""
    async with worker(tmp_path) as first:
        asked = await say(first, "I want to return order #7002")
    assert asked["intent"] == "start_return"
    assert asked["state"]["awaiting"] == "verification"
    assert asked["state"]["order_name"] == "#7002"
    assert asked["links"] == [] and asked["handoff"] is None
    async with worker(tmp_path) as second:
        done = await say(second, "10001")
    assert done["intent"] == "start_return" and done["handoff"] is None
    assert len(done["links"]) == 1 and done["links"][0] in done["reply"]
    assert "/#/link/" in done["links"][0]
    assert done["state"]["links"] == done["links"]


async def test_a_wrong_zip_gets_one_more_try_then_a_person(client: httpx.AsyncClient) -> None:
    await say(client, "I'd like to return my order #7002")
    wrong = await say(client, "99999")
    assert wrong["handoff"] is None and wrong["links"] == []
    assert wrong["state"]["awaiting"] == "verification"
    again = await say(client, "99998")
    assert again["links"] == []
    handoff = again["handoff"]
    assert handoff is not None and set(handoff) >= HANDOFF_KEYS
    # Nothing the customer gave is lost: both answers and the order reach the agent.
    assert "#7002" in handoff["summary"]
    assert "99999" in handoff["summary"] and "99998" in handoff["summary"]


async def test_the_topic_can_change_mid_flow(client: httpx.AsyncClient) -> None:
    asked = await say(client, "I need to send back order 7002", email="sam@example.com")
    assert asked["state"]["awaiting"] == "verification"
    tracked = await say(client, "actually where is my order #7001??", email="sam@example.com")
    assert tracked["intent"] == "order_status"
    assert "1Z70010" in tracked["reply"]  # the stalled shipment's tracking code
    assert tracked["handoff"] is not None  # a stalled parcel goes to a person


async def test_a_handoff_carries_the_routing_decision(client: httpx.AsyncClient) -> None:
    answer = await say(client, "I want to talk to a real person", email="sam@example.com")
    assert answer["intent"] == "agent"
    handoff = answer["handoff"]
    decided = await client.post(
        "/v1/routing/decide",
        json={"customer": {"emails": ["sam@example.com"]}, "channel": "chat", "intent": "agent"},
        headers=AUTH,
    )
    assert (handoff["queue"], handoff["priority"]) == (
        decided.json()["queue"],
        decided.json()["priority"],
    )
    assert handoff["facts"]["shipment_problem"] is True
    assert "I want to talk to a real person" in handoff["summary"]
    # After the hand-off the guide stays out of the way, and says a person has it.
    later = await say(client, "hello??", email="sam@example.com")
    assert later["handoff"] is not None and later["intent"] == "agent"


async def test_not_understood_twice_hands_over(client: httpx.AsyncClient) -> None:
    first = await say(client, "asdf qwer zxcv")
    assert first["handoff"] is None
    assert "Talk to an agent" in first["quickReplies"]
    second = await say(client, "lkjh poiu mnbv")
    assert second["handoff"] is not None


async def test_asked_what_they_mean_the_customer_keeps_the_order(
    client: httpx.AsyncClient,
) -> None:
    unsure = await say(client, "return #7002 please")
    assert unsure["state"]["awaiting"] == "intent"  # not sure enough to act on it
    assert "Start a return" in unsure["quickReplies"] and unsure["handoff"] is None
    picked = await say(client, "Start a return")
    assert picked["intent"] == "start_return"
    assert picked["state"]["order_name"] == "#7002"
    assert picked["state"]["awaiting"] == "verification"


async def test_a_quick_reply_picks_its_topic(client: httpx.AsyncClient) -> None:
    answer = await say(client, "Where's my return?")
    assert answer["intent"] == "return_status"
    assert answer["links"] and answer["links"][0] in answer["reply"]


async def test_sms_replies_fit(client: httpx.AsyncClient) -> None:
    for text in ("where is my return", "Start a return", "#7002"):
        answer = await say(client, text, channel="sms", conversation="sms-1")
        assert len(answer["reply"]) <= 320
        assert all(link in answer["reply"] for link in answer["links"])


async def test_an_sms_customer_answers_with_a_number(client: httpx.AsyncClient) -> None:
    unsure = await say(client, "hmm", channel="sms", conversation="sms-2")
    assert unsure["quickReplies"][0] == "Where's my return?"
    chosen = await say(client, "1", channel="sms", conversation="sms-2")
    assert chosen["intent"] == "return_status"


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"channel": "fax"}, 422),
        ({"conversationId": ""}, 422),
        ({"conversationId": "x" * 129}, 422),
        ({"text": "x" * 20_001}, 422),
        ({"customer": {"emails": []}}, 422),
        ({"customer": None}, 422),
    ],
)
async def test_bad_messages_are_refused(
    client: httpx.AsyncClient, change: dict[str, Any], status: int
) -> None:
    body = {
        "conversationId": "c-bad",
        "channel": "chat",
        "text": "hi",
        "customer": {"emails": ["jane@example.com"]},
        **change,
    }
    response = await client.post("/v1/guide/messages", json=body, headers=AUTH)
    assert response.status_code == status
    assert set(response.json()["error"]) >= {"code", "message"}


async def test_messages_need_a_key(client: httpx.AsyncClient) -> None:
    body = {
        "conversationId": "c",
        "channel": "chat",
        "text": "hi",
        "customer": {"emails": ["a@b.c"]},
    }
    assert (await client.post("/v1/guide/messages", json=body)).status_code == 401


async def test_a_turn_writes_only_over_the_version_it_read(tmp_path: Path) -> None:
    store = await db.Store.open(f"sqlite+aiosqlite:///{tmp_path}/c.db", migrate=True)
    now = datetime.now(UTC)
    try:

        async def save(read_version: int, marker: str) -> bool:
            async with store.session() as session:
                return await db.save_conversation(
                    session,
                    "c-9",
                    channel="chat",
                    emails=["A@x.com"],
                    state={"marker": marker},
                    read_version=read_version,
                    at=now,
                )

        assert await save(0, "first")
        assert not await save(0, "created meanwhile")  # two first messages: one wins
        assert await save(1, "second")
        assert not await save(1, "stale")  # read version 1, but it is 2 now
        async with store.reader() as session:
            row = await db.get_conversation(session, "c-9")
        assert row is not None
        assert (row.version, row.state, row.emails) == (2, {"marker": "second"}, ["a@x.com"])
    finally:
        await store.close()


async def test_two_messages_at_once_one_is_told_to_retry(client: httpx.AsyncClient) -> None:
    body = {
        "conversationId": "c-race",
        "channel": "chat",
        "customer": {"emails": ["jane@example.com"]},
    }
    responses = await asyncio.gather(
        *(
            client.post("/v1/guide/messages", json={**body, "text": t}, headers=AUTH)
            for t in ("where is my return", "where is my order")
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses in ([200, 200], [200, 409])
    for response in responses:
        if response.status_code == 409:
            assert response.json()["error"]["code"] == "conversation_conflict"
