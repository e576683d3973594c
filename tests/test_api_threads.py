"""No request waits on a thread hop for FastAPI plumbing.

FastAPI runs a plain `def` dependency or endpoint in its thread pool: a hop there and
back for every request, and a queue once the pool's 40 threads are busy. Every
dependency and endpoint here is `async def`; this counts the hops the framework makes
while the main routes are served.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastapi.dependencies.utils
import fastapi.routing
import httpx
import pytest

from loopdesk.api.app import create_app
from tests.test_routing_api import AUTH, world_settings

CUSTOMER = {"emails": ["jane@example.com"], "name": "Jane"}
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("GET", {"url": "/v1/customers/lookup", "params": {"email": "jane@example.com"}}),
    ("POST", {"url": "/v1/routing/decide", "json": {"customer": CUSTOMER, "channel": "chat"}}),
    (
        "POST",
        {
            "url": "/v1/guide/messages",
            "json": {
                "conversationId": "threads-1",
                "channel": "chat",
                "text": "where is my return?",
                "customer": CUSTOMER,
            },
        },
    ),
    ("GET", {"url": "/v1/drafts", "params": {"conversationId": "threads-1"}}),
    ("GET", {"url": "/v1/routing/decisions"}),
    ("GET", {"url": "/v1/audit"}),
]


async def test_main_routes_make_no_thread_hops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hops: list[str] = []

    def counting(real: Callable[..., Any]) -> Callable[..., Any]:
        async def run(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            hops.append(getattr(func, "__qualname__", repr(func)))
            return await real(func, *args, **kwargs)

        return run

    for module in (fastapi.dependencies.utils, fastapi.routing):
        monkeypatch.setattr(module, "run_in_threadpool", counting(module.run_in_threadpool))
    app = create_app(world_settings(tmp_path))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        for method, request in CALLS:
            response = await c.request(method, headers=AUTH, **request)
            assert response.status_code == 200, (request["url"], response.text)
    assert hops == []


async def test_the_counter_sees_a_plain_def_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: a sync dependency is counted."""
    hops: list[str] = []
    real = fastapi.dependencies.utils.run_in_threadpool

    async def run(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        hops.append(func.__name__)
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(fastapi.dependencies.utils, "run_in_threadpool", run)

    def plain() -> int:
        return 1

    app = fastapi.FastAPI()

    @app.get("/x")
    async def endpoint(value: int = fastapi.Depends(plain)) -> int:
        return value

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/x")).json() == 1
    assert hops == ["plain"]
