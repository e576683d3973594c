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
    view = await ok(await c.post(f"/v1/drafts/{draft}/credit-type", json={"creditType": "gift"}))
    assert (view["creditType"], view["returnMethodId"]) == ("gift", None)
    view = await ok(await c.post(f"/v1/drafts/{draft}/return-method", json={"returnMethodId": "3"}))
    assert (view["creditType"], view["returnMethodId"]) == ("gift", "3")
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
    assert listed["enabled"] is True


async def test_the_list_filters_by_order_names_as_orders_compare(h: Harness) -> None:
    first = (await start(h))["draftId"]
    other = await ok(
        await h.client.post("/v1/drafts", json={"orderName": "#7104", "secondaryInput": "98101"}),
        201,
    )

    async def listed(*names: str) -> list[str]:
        params = [("orderName", name) for name in names]
        body = await ok(await h.client.get("/v1/drafts", params=params))
        return [d["draftId"] for d in body["items"]]

    assert await listed("7101") == [first]
    assert await listed(" #7101 ", "#7104") == [other["draftId"], first]
    assert await listed("#9999") == []
    assert sorted(await listed()) == sorted([first, other["draftId"]])
    too_many = [("orderName", f"#{n}") for n in range(60)]
    assert (await h.client.get("/v1/drafts", params=too_many)).status_code == 422


async def start(h: Harness, **extra: Any) -> dict[str, Any]:
    body = {"orderName": "#7101", "secondaryInput": "30301", **extra}
    return await ok(await h.client.post("/v1/drafts", json=body), 201)


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code and body["message"]
    details: dict[str, Any] = body["details"]
    return details


async def test_a_step_not_in_the_links_is_409_with_the_next_steps(h: Harness) -> None:
    draft = (await start(h))["draftId"]
    before = h.loop_calls("/finalize-items")
    details = error(
        await h.client.post(f"/v1/drafts/{draft}/finalize"), 409, "draft_step_not_allowed"
    )
    assert details["nextSteps"] == ["add-returning-item", "cancel-draft-return"]
    assert h.loop_calls("/finalize-items") == before


async def test_loops_422_is_a_validation_error_with_loops_codes(h: Harness) -> None:
    response = await h.client.post(
        "/v1/drafts", json={"orderName": "#7101", "secondaryInput": "00000"}
    )
    details = error(response, 422, "loop_validation_error")
    assert details["errors"][0]["code"] == "secondary-input-mismatch"
    response = await h.client.post("/v1/drafts", json={"orderName": "#0000", "secondaryInput": "1"})
    assert error(response, 422, "loop_validation_error")["errors"][0]["code"] == "order-not-found"


BAD_INPUTS: list[tuple[str, str, Any]] = [
    ("POST", "/v1/drafts", {"orderName": "", "secondaryInput": "30301"}),
    ("POST", "/v1/drafts", {"orderName": "#7101"}),
    ("POST", "/v1/drafts", {"orderName": "#7101", "secondaryInput": "1", "isGift": "yes"}),
    ("POST", "/v1/drafts", {"orderName": "#7101", "secondaryInput": "1", "conversationId": ""}),
    ("GET", "/v1/drafts/abc", None),
    ("GET", "/v1/drafts?limit=0", None),
    ("POST", "/v1/drafts/{draft}/items", {"orderLineItemId": "7101001x"}),
    ("POST", "/v1/drafts/{draft}/items", {"orderLineItemId": 0}),
    ("POST", "/v1/drafts/{draft}/items", {"orderLineItemId": 1.5}),
    ("POST", "/v1/drafts/{draft}/items", {"orderLineItemId": 2**64}),
    ("POST", "/v1/drafts/{draft}/items", {"orderLineItemId": True}),
    ("POST", "/v1/drafts/{draft}/items/abc/reason", {"reasonId": "1"}),
    ("POST", "/v1/drafts/{draft}/items/757100/type", {"returnType": "store-credit"}),
    ("POST", "/v1/drafts/{draft}/credit-type", {"creditType": "cash"}),
    ("POST", "/v1/drafts/{draft}/return-method", {}),
    ("DELETE", "/v1/drafts/{draft}/items/0", None),
    ("GET", "/v1/returns/details", None),
    ("GET", "/v1/returns/details?returnId=12a", None),
    ("GET", "/v1/returns/details?returnId=1&currencyType=euro", None),
]


async def test_bad_inputs_are_422_before_loop(h: Harness) -> None:
    draft = (await start(h))["draftId"]
    calls = h.loop_calls("/api/")
    for method, path, body in BAD_INPUTS:
        response = await h.client.request(method, path.format(draft=draft), json=body)
        assert response.status_code == 422, (method, path, body, response.text)
        assert response.json()["error"]["code"] == "invalid_input", (path, body)
    assert h.loop_calls("/api/") == calls


async def test_path_ids_that_are_not_loop_ids_never_reach_loop(h: Harness) -> None:
    from tests.test_bad_input import BAD_IDS

    calls = h.loop_calls("/api/")
    for bad in BAD_IDS:
        for method, path in (
            ("GET", f"/v1/drafts/{bad}"),
            ("POST", f"/v1/drafts/{bad}/finalize"),
            ("DELETE", f"/v1/drafts/900123456/items/{bad}"),
        ):
            response = await h.client.request(method, path)
            # 422 for an id; 404 where a slash in it makes another path, routed nowhere.
            assert response.status_code in (404, 422), (path, response.text)
            assert response.json()["error"]["code"] in ("invalid_input", "not_found")
    assert h.loop_calls("/api/") == calls


async def test_submit_with_an_idempotency_key_is_replayed_not_repeated(h: Harness) -> None:
    c = h.client
    draft = (await start(h))["draftId"]
    item = (
        await ok(await c.post(f"/v1/drafts/{draft}/items", json={"orderLineItemId": "7101001"}))
    )["returningItems"][0]["id"]
    await ok(await c.post(f"/v1/drafts/{draft}/items/{item}/reason", json={"reasonId": 1}))
    await ok(await c.post(f"/v1/drafts/{draft}/finalize"))
    await ok(await c.post(f"/v1/drafts/{draft}/credit-type", json={"creditType": "refund"}))
    await ok(await c.post(f"/v1/drafts/{draft}/return-method", json={"returnMethodId": 1}))
    key = {"Idempotency-Key": "submit-7101"}
    first = await c.post(f"/v1/drafts/{draft}/submit", headers=key)
    again = await c.post(f"/v1/drafts/{draft}/submit", headers=key)
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert again.json() == first.json() and first.json()["returnId"]
    assert h.loop_calls("/submit") == 1
    # Without the key, a second submit is Loop's links' matter: nothing left to do.
    details = error(await c.post(f"/v1/drafts/{draft}/submit"), 409, "draft_step_not_allowed")
    assert details["nextSteps"] == []
    audit = (await ok(await c.get("/v1/audit", params={"action": "draft.submit"})))["items"]
    assert len(audit) == 1 and audit[0]["result"]["body"]["returnId"] == first.json()["returnId"]


async def test_submit_failing_upstream_over_http(h: Harness) -> None:
    c = h.client
    ids = []
    for _ in range(2):
        draft = (await start(h))["draftId"]
        view = await ok(
            await c.post(f"/v1/drafts/{draft}/items", json={"orderLineItemId": "7101001"})
        )
        item = view["returningItems"][0]["id"]
        await ok(await c.post(f"/v1/drafts/{draft}/items/{item}/reason", json={"reasonId": 1}))
        await ok(await c.post(f"/v1/drafts/{draft}/finalize"))
        await ok(await c.post(f"/v1/drafts/{draft}/credit-type", json={"creditType": "refund"}))
        await ok(await c.post(f"/v1/drafts/{draft}/return-method", json={"returnMethodId": 1}))
        ids.append(draft)
    h.faults.add("/submit", status=500, times=1)
    details = error(await c.post(f"/v1/drafts/{ids[0]}/submit"), 503, "loop_unavailable")
    assert details["applied"] is False and details["nextSteps"]
    assert (await ok(await c.get(f"/v1/drafts/{ids[0]}")))["state"] == "items-finalized"
    await ok(await c.post(f"/v1/drafts/{ids[0]}/cancel"))
    h.faults.add("/submit", status=500, times=1, after=True)
    view = await ok(await c.post(f"/v1/drafts/{ids[1]}/submit"))
    assert view["returnId"] and view["verification"]["result"] == "applied"


async def test_an_unknown_draft_is_loops_404(h: Harness) -> None:
    error(await h.client.get("/v1/drafts/123"), 404, "loop_not_found")
    error(await h.client.post("/v1/drafts/123/finalize"), 404, "loop_not_found")
    response = await h.client.get("/v1/returns/details", params={"orderName": "#nope"})
    assert response.status_code == 404


async def test_the_routes_need_the_api_key(h: Harness) -> None:
    for method, path in (("POST", "/v1/drafts"), ("GET", "/v1/drafts"), ("GET", "/v1/drafts/1")):
        response = await h.client.request(method, path, headers={"Authorization": "Bearer no"})
        assert response.status_code == 401


async def test_the_openapi_schema_declares_the_view(h: Harness) -> None:
    schema = (await h.client.get("/openapi.json")).json()
    start_op = schema["paths"]["/v1/drafts"]["post"]
    assert start_op["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/DraftView"
    )
    for status in ("403", "409", "422"):
        assert start_op["responses"][status]["content"]["application/json"]["schema"][
            "$ref"
        ].endswith("/ErrorBody")
    view = schema["components"]["schemas"]["DraftView"]["properties"]
    assert view["lineItems"]["items"]["$ref"].endswith("/LineItemOut")
