"""`DraftDesk` over the in-process sandbox: whole returns step by step, the links'
word on what is legal, the audit trail, Loop's failures and the merchant's switch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from loopdesk import store as db
from loopdesk.api.app import create_app
from loopdesk.drafts import DraftDesk, DraftResult
from loopdesk.settings import Settings

ACTOR = "agent-key"
HTTP = {
    "http_connect_timeout_s": 0.5,
    "http_read_timeout_s": 1.0,
    "http_retry_attempts": 2,
    "http_retry_timeout_s": 0.5,
    "http_max_retry_after_s": 0.1,
    "loop_rate_limit_per_minute": 100_000,
}


class Harness:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.desk: DraftDesk = app.state.services.drafts
        self.store: db.Store = app.state.services.store

    @property
    def sandbox(self) -> Any:
        return self.app.state.upstream.sandbox

    async def audit(self, action: str | None = None) -> list[db.AuditRow]:
        async with self.store.reader() as session:
            return await db.list_audit(session, action=action, limit=500)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    settings = Settings(
        **HTTP,
        api_key="drafts-service-key-0123456789",
        sandbox_rate_limit_per_minute=0,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/drafts.db",
        log_level="WARNING",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield Harness(app)


def ok(result: DraftResult) -> dict[str, Any]:
    assert result.ok, result.body
    return result.body


async def test_a_refund_walks_the_links_to_a_submitted_return(harness: Harness) -> None:
    desk = harness.desk
    started = await desk.start("#7101", "30301", actor=ACTOR, conversation_id="conv-1")
    assert started.status == 201
    view = ok(started)
    draft_id = view["draftId"]
    assert view["orderName"] == "#7101" and view["state"] == "created"
    assert [i["eligible"] for i in view["lineItems"]] == [True, True]
    assert {"id": "5", "name": "Arrived damaged"} in view["reasons"]
    assert view["lineItems"][0]["price"] == 7500 and isinstance(view["lineItems"][0]["price"], int)

    view = ok(await desk.add_item(draft_id, "7101001", actor=ACTOR))
    item = view["returningItems"][0]["id"]
    view = ok(await desk.set_reason(draft_id, item, "5", actor=ACTOR))
    assert view["returningItems"][0]["reasonId"] == "5"
    assert "finalize-items" in view["nextSteps"]
    view = ok(await desk.finalize(draft_id, actor=ACTOR))
    assert view["state"] == "items-finalized"
    totals = await desk.totals(draft_id, actor=ACTOR)
    assert totals.totals is not None and totals.totals.is_difference_covered
    ok(await desk.set_credit_type(draft_id, "refund", actor=ACTOR))
    view = ok(await desk.select_method(draft_id, "1", actor=ACTOR))
    assert "submit-draft-return" in view["nextSteps"]
    submitted = await desk.submit(draft_id, actor=ACTOR)
    view = ok(submitted)
    assert view["state"] == "submitted" and view["returnId"] == submitted.return_id
    assert view["statusPageUrl"] and view["nextSteps"] == []

    [kept] = await desk.recent(conversation_id="conv-1")
    assert (kept.id, kept.state, kept.return_id) == (draft_id, "submitted", view["returnId"])
    assert kept.key_name == ACTOR and kept.order_name == "#7101"
