"""The sandbox's return actions and Detailed Returns List answer like Loop's."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loopdesk.errors import LoopError, LoopRejected
from loopdesk.loop import LoopReturnsClient
from loopdesk.sandbox.app import create_sandbox_app
from loopdesk.sandbox.world import World, iso
from loopdesk.settings import Settings

LOOP = {"X-Authorization": "test-token"}
AS_200 = {**LOOP, "X-Sandbox-State-Error-Status": "200"}
AS_422 = {**LOOP, "X-Sandbox-State-Error-Status": "422"}
STATES = ("open", "closed", "cancelled", "expired", "review")
ISO_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$")
OLD = "2025-03-01T10:00:00+00:00"


def _return(rid: str, state: str, created: str, updated: str | None = None) -> dict[str, Any]:
    return {
        "id": rid,
        "state": state,
        "customer": "ann@example.com",
        "created_at": created,
        "updated_at": updated or created,
        "status_page_url": f"https://company.loopreturns.com/#/return/{rid}",
    }


def make_app(returns: list[dict[str, Any]]) -> FastAPI:
    world = World(returns={r["id"]: r for r in returns})
    return create_sandbox_app(Settings(sandbox_rate_limit_per_minute=0), world=world)


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox")


@pytest.fixture
def app() -> FastAPI:
    # One return per state, the id naming the state.
    return make_app([_return(state, state, OLD) for state in STATES])


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client


# --- actions --------------------------------------------------------------------------


def _generic(state: str, participle: str) -> dict[str, Any]:
    return {
        "errors": {
            "message": f"Return is {state} and therefore cannot be {participle}.",
            "code": "UNPROCESSABLE_RETURN",
        }
    }


# (action, from state) -> new state, or the exact body Loop refuses with.
OUTCOMES: dict[tuple[str, str], str | dict[str, Any]] = {
    ("process", "open"): "closed",
    ("process", "closed"): {
        "errors": {
            "message": "Return is closed and therefore cannot be processed.",
            "code": "UNPROCESSABLE_RETURN",
        }
    },
    ("process", "cancelled"): {"message": "Return is cancelled and therefore cannot be processed."},
    ("process", "expired"): _generic("expired", "processed"),
    ("process", "review"): {
        "errors": {
            "message": "Return is review and therefore cannot be processed.",
            "code": "UNPROCESSABLE_FLAGGED_RETURN",
        }
    },
    ("flag", "open"): "review",
    ("flag", "closed"): _generic("closed", "flagged"),
    ("flag", "cancelled"): _generic("cancelled", "flagged"),
    ("flag", "expired"): _generic("expired", "flagged"),
    ("flag", "review"): _generic("review", "flagged"),
    ("cancel", "open"): "cancelled",
    ("cancel", "closed"): _generic("closed", "cancelled"),
    ("cancel", "cancelled"): _generic("cancelled", "cancelled"),
    ("cancel", "expired"): {"content": "Return is expired and cannot be processed."},
    ("cancel", "review"): {"content": "Return is flagged and cannot be processed."},
    ("close", "open"): "closed",
    ("close", "review"): "closed",
    ("close", "closed"): _generic("closed", "closed"),
    ("close", "cancelled"): _generic("cancelled", "closed"),
    ("close", "expired"): _generic("expired", "closed"),
}


@pytest.mark.parametrize(("action", "state"), sorted(OUTCOMES))
@pytest.mark.parametrize(("headers", "error_status"), [(LOOP, 200), (AS_200, 200), (AS_422, 422)])
async def test_action_state_machine(
    client: httpx.AsyncClient,
    app: FastAPI,
    action: str,
    state: str,
    headers: dict[str, str],
    error_status: int,
) -> None:
    expected = OUTCOMES[(action, state)]
    item = app.state.world.returns[state]
    response = await client.post(f"/api/v1/warehouse/return/{state}/{action}", headers=headers)
    if isinstance(expected, str):
        assert (response.status_code, response.json()) == (200, True)
        assert item["state"] == expected
        assert ISO_SECONDS.match(item["updated_at"]) and item["updated_at"] > OLD
    else:
        assert (response.status_code, response.json()) == (error_status, expected)
        assert (item["state"], item["updated_at"]) == (state, OLD)


def test_every_action_and_state_is_covered() -> None:
    assert set(OUTCOMES) == {(a, s) for a in ("process", "flag", "cancel", "close") for s in STATES}


async def test_actions_chain_on_the_versioned_alias(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    for action in ("flag", "close"):
        response = await client.post(f"/api/2026-07/warehouse/return/open/{action}", headers=LOOP)
        assert (response.status_code, response.content) == (200, b"true")
    assert app.state.world.returns["open"]["state"] == "closed"


async def test_action_on_unknown_return(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/warehouse/return/999/process", headers=LOOP)
    assert (response.status_code, response.json()) == (
        404,
        {"message": "No return found with this ID"},
    )


async def test_action_needs_a_token(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/warehouse/return/open/process")
    assert response.status_code == 401


async def test_bad_state_error_status_header(client: httpx.AsyncClient, app: FastAPI) -> None:
    headers = {**LOOP, "X-Sandbox-State-Error-Status": "500"}
    response = await client.post("/api/v1/warehouse/return/open/flag", headers=headers)
    assert response.status_code == 400
    assert app.state.world.returns["open"]["state"] == "open"


# --- detailed returns list ------------------------------------------------------------

NOW = datetime.now(UTC).replace(microsecond=0)


def _ago(hours: float) -> str:
    return iso(NOW - timedelta(hours=hours))


@pytest.fixture
async def recent() -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(
        [
            _return("11", "open", _ago(1)),
            _return("12", "closed", _ago(2), updated=_ago(0.5)),
            _return("13", "cancelled", _ago(3)),
            _return("14", "review", _ago(5)),
            _return("15", "expired", _ago(10)),
            _return("16", "open", _ago(30), updated=_ago(1.5)),
            _return("17", "open", "2026-01-10T08:00:00+00:00"),
            _return("18", "closed", "2026-02-10T08:00:00+00:00"),
            _return("19", "open", _ago(24 * 50)),
        ]
    )
    async with client_for(app) as client:
        yield client


async def _list(client: httpx.AsyncClient, **params: Any) -> httpx.Response:
    return await client.get("/api/v1/warehouse/return/list", params=params, headers=LOOP)


async def _ids(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await _list(client, **params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, list)  # bare array without `paginate`
    return [r["id"] for r in body]


async def test_list_defaults_to_last_day_and_visible_states(recent: httpx.AsyncClient) -> None:
    # Oldest first; cancelled (13), review (14) and day-old (16) returns are left out.
    assert await _ids(recent) == ["15", "12", "11"]


@pytest.mark.parametrize(("state", "ids"), [("cancelled", ["13"]), ("review", ["14"])])
async def test_list_single_state(recent: httpx.AsyncClient, state: str, ids: list[str]) -> None:
    assert await _ids(recent, state=state) == ids


async def test_list_filter_updated_at(recent: httpx.AsyncClient) -> None:
    assert await _ids(recent, filter="updated_at") == ["15", "16", "11", "12"]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-01-01 00:00:00", "2026-01-31 23:59:59"),
        ("2026-01-01", "2026-01-31"),
        ("2026-01-01T00:00:00+00:00", "2026-01-31T23:59:59Z"),
    ],
)
async def test_list_date_formats(recent: httpx.AsyncClient, start: str, end: str) -> None:
    assert await _ids(recent, **{"from": start, "to": end}) == ["17"]


async def test_list_from_alone_runs_to_now(recent: httpx.AsyncClient) -> None:
    ids = await _ids(recent, **{"from": (NOW - timedelta(days=100)).strftime("%Y-%m-%d")})
    assert ids == ["19", "16", "15", "12", "11"]


async def test_list_range_over_120_days(recent: httpx.AsyncClient) -> None:
    response = await _list(recent, **{"from": "2026-01-01", "to": "2026-05-02"})
    message = "The date range may not exceed 120 days."
    assert response.status_code == 422
    assert response.json() == {"message": message, "errors": {"from": [message]}}
    ok = await _list(recent, **{"from": "2026-01-01", "to": "2026-05-01"})
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"state": "pending"}, "state"),
        ({"filter": "edited_at"}, "filter"),
        ({"paginate": "yes"}, "paginate"),
        ({"paginate": "true", "pageSize": "751"}, "pageSize"),
        ({"paginate": "true", "pageSize": "0"}, "pageSize"),
        ({"from": "yesterday"}, "from"),
    ],
)
async def test_list_invalid_params(
    recent: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await _list(recent, **params)
    assert response.status_code == 422
    body = response.json()
    assert list(body["errors"]) == [field] and body["message"] == body["errors"][field][0]


async def test_list_paginated_envelope(recent: httpx.AsyncClient) -> None:
    response = await _list(recent, paginate="true")
    body = response.json()
    assert list(body) == ["returns", "nextPageUrl", "previousPageUrl"]
    assert [r["id"] for r in body["returns"]] == ["15", "12", "11"]
    assert body["nextPageUrl"] is None and body["previousPageUrl"] is None


def _decode(cursor: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return data


async def test_list_cursor_is_laravels(recent: httpx.AsyncClient) -> None:
    body = (await _list(recent, paginate="1", pageSize="2", filter="updated_at")).json()
    url = httpx.URL(body["nextPageUrl"])
    assert (url.scheme, url.host, url.path) == ("http", "sandbox", "/api/v1/warehouse/return/list")
    assert url.params["filter"] == "updated_at" and url.params["pageSize"] == "2"
    last = body["returns"][-1]
    assert _decode(url.params["cursor"]) == {
        "updated_at": last["updated_at"].replace("T", " ").removesuffix("+00:00"),
        "id": last["id"],
        "_pointsToNextItems": True,
    }


async def test_list_walks_every_page_exactly_once() -> None:
    base = datetime(2026, 3, 1, tzinfo=UTC)
    # Three returns per timestamp, so the id tie-break decides page borders.
    returns = [
        _return(str(1000 + n), STATES[n % 5], iso(base + timedelta(hours=n // 3)))
        for n in range(53)
    ]
    async with client_for(make_app(returns)) as client:
        window = {"from": "2026-02-25", "to": "2026-03-20"}
        expected = await _ids(client, **window)
        assert len(expected) == len(
            [n for n in range(53) if STATES[n % 5] not in ("cancelled", "review")]
        )
        seen: list[str] = []
        response = await _list(client, **window, paginate="true", pageSize="4")
        pages = 0
        while True:
            body = response.json()
            pages += 1
            assert 0 < len(body["returns"]) <= 4
            seen += [r["id"] for r in body["returns"]]
            if body["nextPageUrl"] is None:
                break
            response = await client.get(body["nextPageUrl"], headers=LOOP)
        assert seen == expected and len(set(seen)) == len(seen)
        assert pages == -(-len(expected) // 4)


async def test_list_cursor_resumes_after_its_row(app: FastAPI) -> None:
    # Rows added before the cursor are not replayed; rows after it still come.
    world: World = app.state.world
    for n, state in enumerate(("open", "closed")):
        world.returns[str(n)] = _return(str(n), state, _ago(5 - n))
    async with client_for(app) as client:
        first = (await _list(client, paginate="true", pageSize="1")).json()
        assert [r["id"] for r in first["returns"]] == ["0"]
        world.returns["early"] = _return("early", "open", _ago(6))
        world.returns["late"] = _return("late", "open", _ago(1))
        second = (await client.get(first["nextPageUrl"], headers=LOOP)).json()
        third = (await client.get(second["nextPageUrl"], headers=LOOP)).json()
        assert [r["id"] for r in second["returns"] + third["returns"]] == ["1", "late"]
        assert third["nextPageUrl"] is None


async def test_list_default_page_size() -> None:
    returns = [_return(str(n), "open", _ago(1 + n / 100)) for n in range(101)]
    async with client_for(make_app(returns)) as client:
        body = (await _list(client, paginate="true")).json()
        assert len(body["returns"]) == 100 and body["nextPageUrl"] is not None


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64!",
        base64.b64encode(b"[1,2]").decode(),
        base64.b64encode(b'{"created_at":"2026-01-01 00:00:00","id":"1"}').decode(),
        base64.b64encode(
            b'{"updated_at":"2026-01-01 00:00:00","id":"1","_pointsToNextItems":true}'
        ).decode(),
        base64.b64encode(b'{"created_at":"soon","id":"1","_pointsToNextItems":true}').decode(),
    ],
)
async def test_list_bad_cursor(recent: httpx.AsyncClient, cursor: str) -> None:
    response = await _list(recent, paginate="true", cursor=cursor)
    assert response.status_code == 422
    assert response.json() == {
        "message": "The cursor is invalid.",
        "errors": {"cursor": ["The cursor is invalid."]},
    }


# --- the Loop client against the sandbox's refusals ------------------------------------


def _loop_client(app: FastAPI) -> LoopReturnsClient:
    return LoopReturnsClient(
        base_url="http://sandbox",
        token="test-token",
        settings=Settings(loop_api_token="test-token"),
        transport=httpx.ASGITransport(app=app),
    )


async def test_app_wide_state_error_status(client: httpx.AsyncClient, app: FastAPI) -> None:
    app.state.state_error_status = 422
    refused = await client.post("/api/v1/warehouse/return/closed/process", headers=LOOP)
    assert refused.status_code == 422
    # A request can still ask for Loop's documented 200.
    again = await client.post("/api/v1/warehouse/return/closed/process", headers=AS_200)
    assert again.status_code == 200 and "errors" in again.json()


@pytest.mark.parametrize("action", ["process", "flag", "cancel", "close"])
async def test_client_turns_a_200_refusal_into_a_conflict(app: FastAPI, action: str) -> None:
    """Loop's documented 200 with an error body never reads as success."""
    async with _loop_client(app) as loop:
        with pytest.raises(LoopRejected) as info:
            await loop.return_action("closed", action)
    err = info.value
    assert (err.status, err.http_status, err.details["stateError"]) == (200, 409, True)
    assert "Return is closed" in err.message
    assert app.state.world.returns["closed"]["state"] == "closed"


async def test_client_reports_a_422_refusal(app: FastAPI) -> None:
    app.state.state_error_status = 422
    async with _loop_client(app) as loop:
        with pytest.raises(LoopError) as info:
            await loop.return_action("cancelled", "process")
    assert info.value.status == 422 and 400 <= info.value.http_status < 500
    assert "Return is cancelled" in info.value.message


async def test_client_success_is_true(app: FastAPI) -> None:
    async with _loop_client(app) as loop:
        assert await loop.return_action("open", "flag") is True
    assert app.state.world.returns["open"]["state"] == "review"


@pytest.mark.parametrize(
    "moment", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+14:00", "0001-01-01 00:00:00"]
)
@pytest.mark.parametrize("path", ["/api/v1/warehouse/return/list", "/api/v2/returns"])
async def test_out_of_range_dates_are_laravels_422(
    recent: httpx.AsyncClient, moment: str, path: str
) -> None:
    response = await recent.get(path, params={"from": moment}, headers=LOOP)
    assert response.status_code == 422
    assert response.json()["errors"] == {"from": ["The from is not a valid date."]}
