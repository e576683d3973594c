"""The sandbox's control routes: behind an API key when `serve` mounts it, open alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from loopdesk.api.app import create_app
from loopdesk.sandbox.app import create_sandbox_app
from loopdesk.settings import Settings

KEY = "test-api-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
LOOP = {"X-Authorization": "sandbox"}

# (method, path inside the sandbox, JSON body): every control route, and the webhooks API
# that also decides where signed webhooks go.
GUARDED = [
    ("GET", "/_sandbox/health", None),
    ("GET", "/_sandbox/faults", None),
    ("POST", "/_sandbox/faults", {"path_contains": "/graphql", "status": 500, "times": 1}),
    ("DELETE", "/_sandbox/faults", None),
    ("GET", "/_sandbox/requests", None),
    ("DELETE", "/_sandbox/requests", None),
    ("POST", "/_sandbox/webhooks", {"url": "http://attacker.invalid/", "secret": "x"}),
    ("DELETE", "/_sandbox/webhooks", None),
    ("GET", "/api/v1/webhooks", None),
    (
        "POST",
        "/api/v1/webhooks",
        {"topic": "return", "trigger": "return.created", "url": "http://attacker.invalid/"},
    ),
]


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        api_key=KEY,
        sandbox_rate_limit_per_minute=0,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/guard.db",
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        yield c


@pytest.mark.parametrize(("method", "path", "body"), GUARDED)
async def test_mounted_control_routes_need_a_key(
    service: httpx.AsyncClient, method: str, path: str, body: object
) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        response = await service.request(
            method, f"/sandbox{path}", json=body, headers={**LOOP, **headers}
        )
        assert response.status_code == 401, (path, headers)
        assert response.json()["error"]["code"] == "unauthorized"
    allowed = await service.request(method, f"/sandbox{path}", json=body, headers={**LOOP, **AUTH})
    assert allowed.status_code < 400, allowed.text


async def test_refused_control_calls_change_nothing(service: httpx.AsyncClient) -> None:
    await service.post("/sandbox/_sandbox/faults", json={"status": 500})
    hook = {"url": "http://x.invalid/", "secret": "s"}
    await service.post("/sandbox/_sandbox/webhooks", json=hook)
    faults = await service.get("/sandbox/_sandbox/faults", headers=AUTH)
    assert faults.json() == {"rules": []}
    # the service still answers its lookups (no fault was injected)
    lookup = await service.get("/v1/customers/lookup?email=primary@email.com", headers=AUTH)
    assert lookup.status_code == 200 and lookup.json()["meta"]["errors"] == []


async def test_mounted_loop_api_still_takes_loop_tokens(service: httpx.AsyncClient) -> None:
    response = await service.get("/sandbox/api/v1/allowlists", headers=LOOP)
    assert response.status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), GUARDED)
async def test_standalone_sandbox_keeps_control_routes_open(
    method: str, path: str, body: object
) -> None:
    app = create_sandbox_app(Settings(sandbox_rate_limit_per_minute=0))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sandbox"
    ) as client:
        response = await client.request(method, path, json=body, headers=LOOP)
    assert response.status_code < 400, response.text
