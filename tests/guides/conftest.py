"""The guide's scripted conversations: one app for the whole run, and the containment
report printed at the end of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from loopdesk.api.app import create_app
from loopdesk.settings import Settings
from tests import reports
from tests.guides.world import SHOP, write_world

API_KEY = "guide-conversations-key-0123456789"
# Small on purpose: an upstream that is down costs a conversation well under a second.
HTTP = {
    "http_connect_timeout_s": 0.5,
    "http_read_timeout_s": 1.0,
    "http_retry_attempts": 2,
    "http_retry_timeout_s": 0.5,
    "http_max_retry_after_s": 0.1,
    "loop_rate_limit_per_minute": 100_000,
}


@dataclass
class Outcome:
    """How one scripted conversation ended."""

    name: str
    intent: str
    channel: str
    policy_allows_containment: bool
    handed_off: bool = False
    errored: bool = False  # an answer other than 200: neither contained nor handed off
    # One entry per hand-off answer: what its summary lacks (empty: complete).
    summaries: list[list[str]] = field(default_factory=list)
    failed: bool = False

    @property
    def summary_complete(self) -> bool:
        return bool(self.summaries) and not any(self.summaries)


@dataclass
class Containment:
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    title: str = "guide containment (scripted conversations)"

    def __repr__(self) -> str:
        return f"Containment({len(self.outcomes)} conversations)"

    def record(self, outcome: Outcome) -> None:
        self.outcomes[outcome.name] = outcome

    def lines(self) -> list[str]:
        rows = sorted(self.outcomes.values(), key=lambda o: (o.intent, o.name))
        out = [_header("intent")]
        out += [
            _row(i, [o for o in rows if o.intent == i]) for i in sorted({o.intent for o in rows})
        ]
        out.append(_row("all", rows))
        out.append(_header("channel"))
        channels = sorted({o.channel for o in rows})
        out += [_row(c, [o for o in rows if o.channel == c]) for c in channels]
        out.append(
            "contained: ended without a hand-off, among the conversations where policy "
            "allows it (allowed); correct: contained and every expectation met"
        )
        unassisted = [o for o in rows if not o.handed_off and not o.errored]
        answered = [o for o in unassisted if not o.failed]
        out.append(
            f"all conversations ending without a hand-off: {_share(len(unassisted), len(rows))}; "
            f"with every expectation met: {_share(len(answered), len(rows))}"
        )
        leaked = [o for o in rows if o.policy_allows_containment and o.handed_off]
        if leaked:
            out.append("handed off where policy allows containment: " + _names(leaked))
        kept = [o for o in rows if not o.policy_allows_containment and not o.handed_off]
        if kept:
            out.append("not handed off where a hand-off is the right end: " + _names(kept))
        for o in rows:
            missing = sorted({m for s in o.summaries for m in s})
            if missing:
                out.append(f"incomplete hand-off summary in {o.name}: lacks {', '.join(missing)}")
        failed = [o for o in rows if o.failed]
        if failed:
            out.append(f"conversations with failed expectations ({len(failed)}): {_names(failed)}")
        return out


def _header(by: str) -> str:
    return (
        f"{by:<17}{'convs':>6}{'allowed':>9}{'contained':>14}{'correct':>14}"
        f"{'hand-offs':>11}{'complete summary':>19}"
    )


def _row(label: str, group: list[Outcome]) -> str:
    allowed = [o for o in group if o.policy_allows_containment]
    contained = [o for o in allowed if not o.handed_off and not o.errored]
    correct = [o for o in contained if not o.failed]
    handed = [o for o in group if o.handed_off]
    complete = [o for o in handed if o.summary_complete]
    return (
        f"{label:<17}{len(group):>6}{len(allowed):>9}"
        f"{_share(len(contained), len(allowed)):>14}{_share(len(correct), len(allowed)):>14}"
        f"{len(handed):>11}{_share(len(complete), len(handed)):>19}"
    )


def _share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.0f}%)" if whole else "-"


def _names(outcomes: list[Outcome]) -> str:
    return ", ".join(o.name for o in outcomes)


CONTAINMENT = pytest.StashKey[Containment]()
# The returns made in the conversation (`draft_conversations.yaml`), reported apart so
# the figures of the main script stay its own.
DRAFT_CONTAINMENT = pytest.StashKey[Containment]()


@pytest.fixture(scope="session")
def containment(pytestconfig: pytest.Config) -> Containment:
    return pytestconfig.stash.setdefault(CONTAINMENT, Containment())


@pytest.fixture(scope="session")
def draft_containment(pytestconfig: pytest.Config) -> Containment:
    title = "guide containment (returns made in the conversation)"
    return pytestconfig.stash.setdefault(DRAFT_CONTAINMENT, Containment(title=title))


def pytest_sessionfinish(session: pytest.Session) -> None:
    for key in (CONTAINMENT, DRAFT_CONTAINMENT):
        tally = session.config.stash.get(key, None)
        if tally is not None and tally.outcomes:
            reports.add(session.config, tally.title, tally.lines())


class Guide:
    """The service under test, seen from a help desk posting customer messages."""

    def __init__(self, app: Any, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client

    @property
    def faults(self) -> Any:
        """The in-process sandbox's fault controller (`loopdesk.sandbox.faults`)."""
        return self.app.state.upstream.sandbox.state.faults

    @property
    def sandbox(self) -> httpx.AsyncClient:
        """The in-process sandbox itself (its `/_sandbox/...` controls, Loop's API)."""
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app.state.upstream.sandbox),
            base_url="http://sandbox",
            timeout=10.0,
        )

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(
            path, params=params, headers={"Authorization": f"Bearer {API_KEY}"}
        )

    async def post(self, path: str, body: Any = None) -> httpx.Response:
        return await self.client.post(
            path, json=body, headers={"Authorization": f"Bearer {API_KEY}"}
        )

    async def say(
        self, conversation_id: str, channel: str, customer: dict[str, Any], text: str
    ) -> httpx.Response:
        body = {
            "conversationId": conversation_id,
            "channel": channel,
            "text": text,
            "customer": {
                "emails": list(customer.get("emails", [])),
                "phones": list(customer.get("phones", [])),
                "name": customer.get("name", ""),
                "attributes": dict(customer.get("attributes") or {}),
            },
        }
        return await self.client.post(
            "/v1/guide/messages", json=body, headers={"Authorization": f"Bearer {API_KEY}"}
        )


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def guide(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Guide]:
    tmp = tmp_path_factory.mktemp("guides")
    # The merchant's name signs the guide's messages, and this shop sends Loop's return
    # links (returns made in the conversation are `test_draft_conversations.py`'s); every
    # other policy is the default.
    policy = tmp / "policy.toml"
    policy.write_text(
        f'[shop]\nname = "{SHOP["name"]}"\n\n[returns]\ncreate_in_conversation = false\n',
        encoding="utf-8",
    )
    settings = Settings(
        **HTTP,
        policy_file=policy,
        api_key=API_KEY,
        sandbox_data=write_world(tmp / "world.json"),
        sandbox_rate_limit_per_minute=0,
        database_url=f"sqlite+aiosqlite:///{tmp}/guides.db",
        log_level="WARNING",
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://loopdesk", timeout=10.0
        ) as client,
    ):
        yield Guide(app, client)


@pytest.fixture(scope="session")
def world_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_world(tmp_path_factory.mktemp("guides-world") / "world.json")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def draft_guide(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Guide]:
    """The service over the sandbox's own seeded world (its draft-return customers
    #7101-#7105), creating returns in the conversation (the policy's default)."""
    tmp = tmp_path_factory.mktemp("draft-guides")
    policy = tmp / "policy.toml"
    policy.write_text(f'[shop]\nname = "{SHOP["name"]}"\n', encoding="utf-8")
    settings = Settings(
        **HTTP,
        policy_file=policy,
        api_key=API_KEY,
        sandbox_rate_limit_per_minute=0,
        database_url=f"sqlite+aiosqlite:///{tmp}/guides.db",
        log_level="WARNING",
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://loopdesk", timeout=10.0
        ) as client,
    ):
        yield Guide(app, client)
