"""The sandbox's HTML error page: what a proxy in front of Loop answers when Loop fails."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from loopdesk.sandbox.app import create_sandbox_app
from loopdesk.sandbox.faults import parse_fault_header
from loopdesk.sandbox.seed import generate_world
from loopdesk.settings import Settings

LOOP = {"X-Authorization": "test-token"}
RETURNS = "/api/v2/returns"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_sandbox_app(
        Settings(sandbox_rate_limit_per_minute=0), world=generate_world(customers=3)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        yield client


def _is_html_page(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.lstrip().startswith("<html>")
    assert f"<title>{status} " in response.text


async def test_html_rule_defaults_to_502_and_can_carry_any_status(
    client: httpx.AsyncClient,
) -> None:
    added = await client.post(
        "/_sandbox/faults", json={"path_contains": "/api/v2/returns", "html": True, "times": 1}
    )
    assert added.status_code == 201 and added.json()["rules"][0]["html"] is True
    _is_html_page(await client.get(RETURNS, headers=LOOP), 502)
    assert (await client.get(RETURNS, headers=LOOP)).status_code == 200  # `times` ran out

    await client.post(
        "/_sandbox/faults",
        json={"path_contains": "/api/", "html": True, "status": 503, "retry_after": 2},
    )
    response = await client.get(RETURNS, headers=LOOP)
    _is_html_page(response, 503)
    assert response.headers["Retry-After"] == "2"
    # A maintenance page served as a 200: the status says fine, the body is no JSON.
    await client.delete("/_sandbox/faults")
    await client.post("/_sandbox/faults", json={"html": True, "status": 200})
    _is_html_page(await client.get(RETURNS, headers=LOOP), 200)


async def test_html_header_directive(client: httpx.AsyncClient) -> None:
    assert parse_fault_header("html").html
    assert parse_fault_header("html; status=500") == parse_fault_header("status=500; html")
    _is_html_page(
        await client.get(RETURNS, headers={**LOOP, "X-Sandbox-Fault": "html; status=504"}), 504
    )
    assert (await client.get(RETURNS, headers=LOOP)).status_code == 200
