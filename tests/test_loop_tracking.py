"""OrderTrackingClient: the peer's GraphQL query, GraphQL errors, and the REST search."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx
from fastapi import FastAPI, Request

from loopdesk.errors import LoopAuthError, LoopError, LoopNotFound
from loopdesk.loop import OrderTrackingClient
from loopdesk.settings import ORDER_TRACKING_BASE_URL, Settings

TOKEN = "sk_live_shop_secret-123"
EXPECTED_BODY = (
    '{"query":"query fetchGladlyOrderInformation($emails: [String!]!) '
    "{ orders(input: {customerEmails: $emails}) "
    '{ name shipments { trackingCode status carrierDisplayName } } }",'
    '"variables":{"emails":["primary@email.com","secondary@email.com"]}}'
)
ORDERS = {
    "data": {
        "orders": [
            {
                "name": "Order 123",
                "shipments": [
                    {"trackingCode": "1Z999", "status": "shipped", "carrierDisplayName": "UPS"}
                ],
            }
        ]
    }
}


pytestmark = pytest.mark.usefixtures("instant_retries")


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=ORDER_TRACKING_BASE_URL, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def client() -> AsyncIterator[OrderTrackingClient]:
    async with OrderTrackingClient(
        base_url=ORDER_TRACKING_BASE_URL, token=TOKEN, settings=Settings(loop_api_token="t")
    ) as c:
        yield c


async def test_orders_query_sends_the_peers_exact_body_and_header(
    client: OrderTrackingClient, mock: respx.MockRouter
) -> None:
    route = mock.post("/graphql").mock(return_value=httpx.Response(200, json=ORDERS))
    body = await client.orders_for_emails(["primary@email.com", "secondary@email.com"])
    assert body == ORDERS
    request = route.calls.last.request
    assert request.content.decode() == EXPECTED_BODY
    assert request.headers["x-wonderment-access-token"] == TOKEN
    assert request.headers["Content-Type"] == "application/json"


async def test_graphql_errors_without_data_raise(
    client: OrderTrackingClient, mock: respx.MockRouter
) -> None:
    body = {"data": None, "errors": [{"message": "Variable $emails is invalid"}, {"message": "x"}]}
    mock.post("/graphql").mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(LoopError) as info:
        await client.orders_for_emails(["a@b.co"])
    assert info.value.message == "Variable $emails is invalid"
    assert (info.value.status, info.value.endpoint) == (200, "tracking.orders")


async def test_graphql_partial_data_is_returned(
    client: OrderTrackingClient, mock: respx.MockRouter
) -> None:
    body = {**ORDERS, "errors": [{"message": "one shipment failed"}]}
    mock.post("/graphql").mock(return_value=httpx.Response(200, json=body))
    assert await client.orders_for_emails(["a@b.co"]) == body


async def test_graphql_query_is_retried_like_a_read(
    client: OrderTrackingClient, mock: respx.MockRouter
) -> None:
    route = mock.post("/graphql").mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200, json=ORDERS)]
    )
    assert await client.orders_for_emails(["a@b.co"]) == ORDERS
    assert route.call_count == 2


async def test_bad_token_is_an_auth_error(
    client: OrderTrackingClient, mock: respx.MockRouter
) -> None:
    mock.post("/graphql").mock(
        return_value=httpx.Response(401, json={"message": "401: Authentication Failed"})
    )
    with pytest.raises(LoopAuthError, match=r"^401: Authentication Failed$") as info:
        await client.orders_for_emails(["a@b.co"])
    assert TOKEN not in str(info.value)


@pytest.mark.parametrize(
    ("term", "raw_path"),
    [
        ("#1001", b"/2022-10/shipments/search/%231001"),
        ("1Z 9/9", b"/2022-10/shipments/search/1Z%209%2F9"),
    ],
)
async def test_search_shipments_encodes_the_term(
    client: OrderTrackingClient, mock: respx.MockRouter, term: str, raw_path: bytes
) -> None:
    found = {"name": "#1001", "shipments": []}
    route = mock.get(path__regex=r".*").mock(return_value=httpx.Response(200, json=found))
    assert await client.search_shipments(term) == found
    assert route.calls.last.request.url.raw_path == raw_path


async def test_search_shipments_null_and_404(
    client: OrderTrackingClient, mock: respx.MockRouter
) -> None:
    mock.get("/2022-10/shipments/search/none").mock(return_value=httpx.Response(200, text="null"))
    mock.get("/2022-10/shipments/search/gone").mock(
        return_value=httpx.Response(404, json={"message": "We couldn't find that order"})
    )
    assert await client.search_shipments("none") is None
    with pytest.raises(LoopNotFound, match="couldn't find"):
        await client.search_shipments("gone")


async def test_in_process_transport_and_settings() -> None:
    # The sandbox is served the same way: an ASGI app behind httpx.ASGITransport.
    app = FastAPI()
    seen: list[dict[str, Any]] = []

    @app.post("/graphql")
    async def graphql(request: Request) -> dict[str, Any]:
        seen.append(
            {"token": request.headers.get("x-wonderment-access-token"), **await request.json()}
        )
        return ORDERS

    settings = Settings(loop_api_token="t", order_tracking_token="tracking-token-987")
    transport = httpx.ASGITransport(app=app)
    async with OrderTrackingClient.from_settings(settings, transport=transport) as c:
        assert await c.orders_for_emails(["a@b.co"]) == ORDERS
        assert c.stats.by_endpoint() == {"tracking.orders": {"200": 1}}
    assert seen[0]["token"] == "tracking-token-987"
    assert seen[0]["variables"] == {"emails": ["a@b.co"]}
    assert json.dumps(seen[0]["query"]).startswith('"query fetchGladlyOrderInformation')
