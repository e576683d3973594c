"""One loopdesk over the in-process sandbox for the draft-return tests (the service and
the API): the app, a client with the API key, the sandbox's controls and the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from loopdesk import store as db
from loopdesk.api.app import create_app
from loopdesk.drafts import DraftDesk
from loopdesk.settings import Settings

API_KEY = "drafts-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
# Small on purpose: a Loop that fails costs a test well under a second.
HTTP = {
    "http_connect_timeout_s": 0.5,
    "http_read_timeout_s": 1.0,
    "http_retry_attempts": 2,
    "http_retry_timeout_s": 0.5,
    "http_max_retry_after_s": 0.1,
    "loop_rate_limit_per_minute": 100_000,
}


class Harness:
    def __init__(self, app: Any, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client
        self.desk: DraftDesk = app.state.services.drafts
        self.store: db.Store = app.state.services.store

    @property
    def sandbox(self) -> Any:
        return self.app.state.upstream.sandbox

    @property
    def faults(self) -> Any:
        return self.sandbox.state.faults

    def loop_calls(self, part: str = "/draft-returns") -> int:
        """Requests the sandbox saw whose path holds `part`."""
        return sum(n for path, n in self.faults.request_counts().items() if part in path)

    async def sandbox_post(self, path: str, body: Any = None) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.sandbox)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as c:
            response = await c.post(path, json=body)
        assert response.status_code == 200, response.text
        return response

    async def audit(self, action: str | None = None) -> list[db.AuditRow]:
        """Oldest first."""
        async with self.store.reader() as session:
            rows = await db.list_audit(session, action=action, limit=500)
        return rows[::-1]


@asynccontextmanager
async def open_harness(tmp_path: Path, policy: str | None = None) -> AsyncIterator[Harness]:
    policy_file = None
    if policy is not None:
        policy_file = tmp_path / "policy.toml"
        policy_file.write_text(policy, encoding="utf-8")
    settings = Settings(
        **HTTP,
        api_key=API_KEY,
        policy_file=policy_file,
        sandbox_rate_limit_per_minute=0,
        sandbox_webhooks_to_self=False,
        sandbox_customers=12,  # the draft personas are seeded whatever the count
        database_url=f"sqlite+aiosqlite:///{tmp_path}/drafts.db",
        log_level="WARNING",
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://loopdesk", headers=AUTH
        ) as client,
    ):
        yield Harness(app, client)
