"""`/v1/drafts`: each step of a draft return over HTTP, against the in-process sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.drafts_harness import Harness, open_harness


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async with open_harness(tmp_path) as harness:
        yield harness


async def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_store_credit_return_over_http(h: Harness) -> None:
    c = h.client
    view = await ok(
        await c.post(
            "/v1/drafts",
            json={"orderName": "#7101", "secondaryInput": "30301", "conversationId": "c-9"},
        ),
        201,
    )
    draft = view["draftId"]
    view = await ok(await c.post(f"/v1/drafts/{draft}/items", json={"orderLineItemId": 7101002}))
    item = view["returningItems"][0]["id"]
    await ok(await c.post(f"/v1/drafts/{draft}/items/{item}/reason", json={"reasonId": "4"}))
    await ok(await c.post(f"/v1/drafts/{draft}/finalize"))
    view = await ok(await c.get(f"/v1/drafts/{draft}/totals"))
    assert view["totals"]["isDifferenceCovered"] is True
    await ok(await c.post(f"/v1/drafts/{draft}/credit-type", json={"creditType": "gift"}))
    await ok(await c.post(f"/v1/drafts/{draft}/return-method", json={"returnMethodId": "3"}))
    view = await ok(await c.post(f"/v1/drafts/{draft}/submit"))
    assert view["state"] == "submitted" and view["returnId"]
    assert view["statusPageUrl"].startswith("http")

    details = await ok(await c.get("/v1/returns/details", params={"returnId": view["returnId"]}))
    assert details["id"] == view["returnId"] and details["orderName"] == "#7101"
    assert details["statusPageUrl"] == view["statusPageUrl"]
    assert isinstance(details["returnTotal"], int)

    again = await ok(await c.get(f"/v1/drafts/{draft}"))
    assert again["state"] == "submitted" and again["statusPageUrl"] == view["statusPageUrl"]
    listed = await ok(await c.get("/v1/drafts", params={"conversationId": "c-9"}))
    assert [(d["draftId"], d["state"]) for d in listed["items"]] == [(draft, "submitted")]
