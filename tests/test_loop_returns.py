"""LoopReturnsClient: the wire of each Loop Returns endpoint, and the peer's error wording."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from loopdesk.errors import (
    InvalidUpstreamData,
    LoopError,
    LoopRejected,
    LoopUnavailable,
    LoopValidationError,
)
from loopdesk.loop import LoopReturnsClient
from loopdesk.loop.returns import returns_list_url
from loopdesk.settings import LOOP_BASE_URL, Settings
from tests.conftest import CONFORMANCE

TOKEN = "loop-returns-token-abc"
ACTIONS = CONFORMANCE / "loop_returns" / "actions"


pytestmark = pytest.mark.usefixtures("instant_retries")


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=LOOP_BASE_URL, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def client() -> AsyncIterator[LoopReturnsClient]:
    async with LoopReturnsClient(
        base_url=LOOP_BASE_URL, token=TOKEN, settings=Settings(loop_api_token="t")
    ) as c:
        yield c


def sent_json(route: respx.Route) -> Any:
    return json.loads(route.calls.last.request.content)


# Reads -----------------------------------------------------------------------------


async def test_list_returns_sends_the_peers_exact_url_and_headers(
    client: LoopReturnsClient, mock: respx.MockRouter
) -> None:
    envelope = {"status": "success", "data": []}
    route = mock.get("/api/v2/returns").mock(return_value=httpx.Response(200, json=envelope))
    body = await client.list_returns("primary@email.com", since=dt.date(2025, 11, 24), limit=10)
    assert body == envelope  # not normalized here
    request = route.calls.last.request
    assert str(request.url) == (
        "https://api.loopreturns.com/api/v2/returns"
        "?filter=updated_at&limit=10&from=2025-11-24&customer_email=primary%40email.com"
    )
    assert str(request.url) == returns_list_url(
        LOOP_BASE_URL + "/", "primary@email.com", since=dt.date(2025, 11, 24), limit=10
    )
    assert request.headers["X-Authorization"] == TOKEN
    assert request.headers["Accept"] == "application/json"
    assert "Authorization" not in request.headers


async def test_list_returns_encodes_every_reserved_character(
    client: LoopReturnsClient, mock: respx.MockRouter
) -> None:
    route = mock.get("/api/v2/returns").mock(return_value=httpx.Response(200, json={}))
    await client.list_returns("jane+vip&x@shop.com", since=dt.date(2025, 1, 2), limit=5)
    assert route.calls.last.request.url.query == (
        b"filter=updated_at&limit=5&from=2025-01-02&customer_email=jane%2Bvip%26x%40shop.com"
    )


@pytest.mark.parametrize(
    "payload",
    [
        [{"id": 2825514, "content": "Note 2", "created_at": "2023-04-17 22:56:54"}],
        {"notes": [{"id": 2825514, "content": "Note 2", "created_at": "2023-04-17 22:56:54"}]},
    ],
)
async def test_list_notes_accepts_both_shapes(
    client: LoopReturnsClient, mock: respx.MockRouter, payload: Any
) -> None:
    route = mock.get("/api/v1/warehouse/return/25044777/notes").mock(
        return_value=httpx.Response(200, json=payload)
    )
    notes = await client.list_notes("25044777")
    assert notes == [{"id": 2825514, "content": "Note 2", "created_at": "2023-04-17 22:56:54"}]
    assert route.call_count == 1


@pytest.mark.parametrize("body", ["false", '"false"'])
async def test_list_notes_422_false_means_no_notes(
    client: LoopReturnsClient, mock: respx.MockRouter, body: str
) -> None:
    route = mock.get("/api/v1/warehouse/return/1/notes").mock(
        return_value=httpx.Response(422, text=body)
    )
    assert await client.list_notes("1") == []
    assert route.call_count == 1


async def test_list_notes_other_failures_raise(
    client: LoopReturnsClient, mock: respx.MockRouter
) -> None:
    mock.get("/api/v1/warehouse/return/1/notes").mock(
        return_value=httpx.Response(422, json={"message": "Invalid return."})
    )
    mock.get("/api/v1/warehouse/return/2/notes").mock(return_value=httpx.Response(200, json="x"))
    with pytest.raises(LoopValidationError, match="Invalid return"):
        await client.list_notes("1")
    with pytest.raises(InvalidUpstreamData):
        await client.list_notes("2")


async def test_ids_cannot_reshape_the_path(
    client: LoopReturnsClient, mock: respx.MockRouter
) -> None:
    route = mock.get(path__regex=r".*").mock(return_value=httpx.Response(200, json=[]))
    await client.list_notes("1/../../allowlists?x=1")
    assert route.calls.last.request.url.raw_path == (
        b"/api/v1/warehouse/return/1%2F..%2F..%2Fallowlists%3Fx%3D1/notes"
    )


async def test_list_allowlist(client: LoopReturnsClient, mock: respx.MockRouter) -> None:
    page = {"data": [], "current_page": 2, "next_page_url": None}
    route = mock.get("/api/v1/allowlists").mock(return_value=httpx.Response(200, json=page))
    assert await client.list_allowlist(page=2) == page
    assert route.calls.last.request.url.params["page"] == "2"


# Actions ------------------------------------------------------------------------------


async def test_create_return_link_sends_the_exact_body(
    client: LoopReturnsClient, mock: respx.MockRouter
) -> None:
    url = {"url": "https://company-store.loopreturns.com/#/link/c8bd9fd7"}
    route = mock.post("/api/v1/order/link").mock(return_value=httpx.Response(200, json=url))
    assert await client.create_return_link("#1234", "abc@xyz.com") == url
    request = route.calls.last.request
    assert request.content == b'{"name":"#1234","zip":"abc@xyz.com","gift":false}'
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Authorization"] == TOKEN


@pytest.mark.parametrize("status", [200, 201])
async def test_create_allowlist_entry(
    client: LoopReturnsClient, mock: respx.MockRouter, status: int
) -> None:
    entry = {"id": 3022809, "type": "email", "value": "abc@xyz.com", "secondary_value": None}
    route = mock.post("/api/v1/allowlists").mock(return_value=httpx.Response(status, json=entry))
    assert await client.create_allowlist_entry("email", "abc@xyz.com") == entry
    assert route.calls.last.request.content == b'{"type":"email","value":"abc@xyz.com"}'


@pytest.mark.parametrize(
    ("response", "expected"),
    [(httpx.Response(204), None), (httpx.Response(200, json={"deleted": True}), {"deleted": True})],
)
async def test_delete_allowlist_entry(
    client: LoopReturnsClient, mock: respx.MockRouter, response: httpx.Response, expected: Any
) -> None:
    mock.delete("/api/v1/allowlists/77").mock(return_value=response)
    assert await client.delete_allowlist_entry("77") == expected


async def test_delete_is_retried_after_a_read_timeout(
    client: LoopReturnsClient, mock: respx.MockRouter
) -> None:
    route = mock.delete("/api/v1/allowlists/77").mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.Response(204)]
    )
    assert await client.delete_allowlist_entry("77") is None
    assert route.call_count == 2


async def test_add_note(client: LoopReturnsClient, mock: respx.MockRouter) -> None:
    route = mock.post("/api/v1/warehouse/return/9/note").mock(
        return_value=httpx.Response(200, json="true")
    )
    await client.add_note("9", "Customer called")
    assert sent_json(route) == {"content": "Customer called"}


async def test_add_note_validation_error(client: LoopReturnsClient, mock: respx.MockRouter) -> None:
    message = "Content is required and must be less than 255 characters."
    mock.post("/api/v1/warehouse/return/9/note").mock(
        return_value=httpx.Response(422, json={"errors": {"message": message}})
    )
    with pytest.raises(LoopValidationError) as info:
        await client.add_note("9", "")
    assert info.value.errors == [{"message": message}]


@pytest.mark.parametrize("action", ["process", "close", "cancel", "flag"])
@pytest.mark.parametrize("success", [True, "true"])
async def test_return_action_success(
    client: LoopReturnsClient, mock: respx.MockRouter, action: str, success: Any
) -> None:
    route = mock.post(f"/api/v1/warehouse/return/25044777/{action}").mock(
        return_value=httpx.Response(200, json=success)
    )
    assert await client.return_action("25044777", action) == success  # type: ignore[arg-type]
    assert route.calls.last.request.content == b""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {
                "errors": {
                    "message": "Return is closed and therefore cannot be processed.",
                    "code": "UNPROCESSABLE_RETURN",
                }
            },
            "Return is closed and therefore cannot be processed.",
        ),
        (
            {"message": "Return is cancelled and therefore cannot be processed."},
            "Return is cancelled and therefore cannot be processed.",
        ),
        (
            {"content": "Return is expired and cannot be processed."},
            "Return is expired and cannot be processed.",
        ),
    ],
)
async def test_return_action_state_errors_sent_with_200(
    client: LoopReturnsClient, mock: respx.MockRouter, body: Any, message: str
) -> None:
    mock.post("/api/v1/warehouse/return/1/process").mock(
        return_value=httpx.Response(200, json=body)
    )
    with pytest.raises(LoopRejected) as info:
        await client.return_action("1", "process")
    err = info.value
    assert err.message == f"unable to execute action: '{message}'"
    assert err.details["stateError"] is True
    assert err.http_status == 409
    assert (err.status, err.body, err.endpoint) == (200, body, "returns.action.process")
    assert LoopRejected.http_status == 400  # the class default is untouched


async def test_action_post_not_retried_on_read_timeout(
    client: LoopReturnsClient, mock: respx.MockRouter
) -> None:
    route = mock.post("/api/v1/warehouse/return/1/close").mock(side_effect=httpx.ReadTimeout("t"))
    with pytest.raises(LoopUnavailable, match="did not answer in time"):
        await client.return_action("1", "close")
    assert route.call_count == 1


async def test_action_post_retried_on_connect_error_not_on_503(
    client: LoopReturnsClient, mock: respx.MockRouter
) -> None:
    # Refused: never sent, so repeated. A 503 may hide a link Loop made: reported.
    route = mock.post("/api/v1/order/link").mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.Response(503),
            httpx.Response(200, json={"url": "u"}),
        ]
    )
    with pytest.raises(LoopUnavailable) as info:
        await client.create_return_link("#1", "1")
    assert route.call_count == 2
    assert info.value.details["outcomeUnknown"] is True


# The peer's error wording -------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error_type", "message"),
    [
        (
            400,
            {"errors": ['["errorCode1"]', '["errorCode2"]']},
            LoopRejected,
            "unable to execute action: '[\"errorCode1\"]'",
        ),
        (
            500,
            {"message": "Server Error"},
            LoopUnavailable,
            "unable to execute action: 'Server Error'",
        ),
        (500, None, LoopUnavailable, "unable to execute action: 'Internal Server Error'"),
    ],
)
async def test_action_failures_follow_the_peer(
    client: LoopReturnsClient,
    mock: respx.MockRouter,
    status: int,
    body: Any,
    error_type: type[LoopError],
    message: str,
) -> None:
    response = httpx.Response(status, json=body) if body is not None else httpx.Response(status)
    route = mock.post("/api/v1/allowlists").mock(return_value=response)
    with pytest.raises(error_type) as info:
        await client.create_allowlist_entry("email", "abc@xyz.com")
    assert info.value.message == message
    assert route.call_count == 1  # 400 and 500 are never repeated for a write


def _conformance_cases() -> list[Any]:
    cases = []
    for action in ("generate_return_link", "create_allowlist_item"):
        for case in sorted((ACTIONS / action / "_test_" / "data").glob("*/")):
            if (case / "rawData.json").exists() and case.name != "success":
                cases.append(pytest.param(action, case, id=f"{action}/{case.name}"))
    return cases


@pytest.mark.parametrize(("action", "case"), _conformance_cases())
async def test_action_errors_match_the_conformance_fixtures(
    client: LoopReturnsClient, mock: respx.MockRouter, action: str, case: Path
) -> None:
    raw = json.loads((case / "rawData.json").read_text())
    status = json.loads((case / "response.json").read_text())["statusCode"]
    expected = json.loads((case / "expected_response_transformation.json").read_text())
    mock.post(path__regex=r".*").mock(return_value=httpx.Response(status, json=raw))
    with pytest.raises(LoopError) as info:
        if action == "generate_return_link":
            await client.create_return_link("#1234", "abc@xyz.com")
        else:
            await client.create_allowlist_entry("email", "abc@xyz.com")
    if isinstance(expected, dict):
        assert isinstance(info.value, LoopValidationError)
        assert {"errors": info.value.errors} == expected
    else:
        assert info.value.message == expected


@pytest.mark.parametrize("action", ["generate_return_link", "create_allowlist_item"])
async def test_action_requests_match_the_conformance_fixtures(
    client: LoopReturnsClient, mock: respx.MockRouter, action: str
) -> None:
    success = ACTIONS / action / "_test_" / "data" / "success"
    inputs = json.loads((success / "inputs.json").read_text())
    raw = json.loads((success / "rawData.json").read_text())
    status = json.loads((success / "response.json").read_text())["statusCode"]
    route = mock.post(path__regex=r".*").mock(return_value=httpx.Response(status, json=raw))
    if action == "generate_return_link":
        assert await client.create_return_link(inputs["orderName"], inputs["orderZIP"]) == raw
    else:
        assert await client.create_allowlist_entry(inputs["type"], inputs["value"]) == raw
    request = route.calls.last.request
    assert str(request.url) == (success / "expected_request_url.txt").read_text().strip()
    expected_body = json.loads((success / "expected_request_body.json").read_text())
    assert list(json.loads(request.content).items()) == list(expected_body.items())


# Construction ----------------------------------------------------------------------------


async def test_from_settings_uses_base_url_token_and_transport() -> None:
    settings = Settings(loop_api_token="settings-token-xyz", loop_base_url="https://loop.example")
    router = respx.MockRouter(base_url="https://loop.example")
    route = router.get("/api/v1/allowlists").mock(return_value=httpx.Response(200, json={}))
    async with LoopReturnsClient.from_settings(
        settings, transport=httpx.MockTransport(router.handler)
    ) as c:
        await c.list_allowlist()
        assert c.stats.by_endpoint() == {"allowlist.list": {"200": 1}}
    assert route.calls.last.request.headers["X-Authorization"] == "settings-token-xyz"
