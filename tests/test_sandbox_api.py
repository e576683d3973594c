"""The sandbox's endpoints answer like Loop Returns and Loop Order Tracking."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from loopdesk.sandbox.app import create_sandbox_app
from loopdesk.sandbox.seed import demo_emails, generate_world
from loopdesk.sandbox.world import World
from loopdesk.settings import Settings

LOOP = {"X-Authorization": "test-token"}
TRACKING = {"x-wonderment-access-token": "test-token"}
UNAUTHORIZED = {
    "error": {"code": "401", "http_code": "GEN-UNAUTHORIZED", "message": "Unauthorized."}
}
GLADLY_QUERY = (
    "query fetchGladlyOrderInformation($emails: [String!]!) { orders(input: "
    "{customerEmails: $emails}) { name shipments { trackingCode status carrierDisplayName } } }"
)


def _return(rid: str, customer: str, created: str, updated: str) -> dict[str, Any]:
    return {
        "id": rid,
        "state": "open",
        "customer": customer,
        "created_at": f"{created}+00:00",
        "updated_at": f"{updated}+00:00",
        "label_status": "N/A",
    }


def small_world() -> World:
    """Four returns whose dates make every filter and sort observable."""
    returns = [
        _return("101", "ann@example.com", "2026-01-10T08:00:00", "2026-01-20T08:00:00"),
        _return("102", "Ann@Example.com", "2026-01-15T08:00:00", "2026-02-02T08:00:00"),
        _return("103", "bob@example.com", "2026-02-01T08:00:00", "2026-02-01T09:00:00"),
        _return("104", "ann.alt@example.com", "2026-02-05T23:30:00", "2026-02-06T08:00:00"),
    ]
    orders = [
        {
            "name": "#1086",
            "customer_email": "Ann@Example.com",
            "zip": "43215",
            "created_at": "2026-01-01T10:00:00+00:00",
            "shipments": [
                {
                    "trackingCode": "1Z999AA10123456784",
                    "status": "DELIVERED",
                    "carrierDisplayName": "UPS",
                    "trackingUrl": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
                    "eta": None,
                    "deliveredAt": "2026-01-04T10:00:00+00:00",
                },
                {
                    "trackingCode": "9400111899562537001234",
                    "status": "TRANSIT",
                    "carrierDisplayName": "USPS",
                    "trackingUrl": None,
                    "eta": "2026-01-08",
                    "deliveredAt": None,
                },
            ],
        }
    ]
    notes = {
        "101": [
            {"id": 1, "content": "older", "created_at": "2026-01-11 10:00:00"},
            {"id": 2, "content": "newer", "created_at": "2026-01-12 10:00:00"},
        ]
    }
    return World(returns={r["id"]: r for r in returns}, notes=notes, orders=orders)


def settings(**overrides: Any) -> Settings:
    return Settings(**{"sandbox_rate_limit_per_minute": 0, **overrides})


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox")


@pytest.fixture
def app() -> FastAPI:
    return create_sandbox_app(settings(), world=small_world())


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client


@pytest.fixture(scope="module")
def seeded_world() -> World:
    return generate_world(customers=40)


@pytest.fixture
async def seeded(seeded_world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_sandbox_app(settings(), world=seeded_world)) as client:
        yield client


# --- auth -----------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"X-Authorization": ""}, {"X-Authorization": "  "}])
async def test_loop_returns_needs_a_token(client: httpx.AsyncClient, headers: Any) -> None:
    for path in ("/api/v2/returns", "/api/v1/allowlists", "/api/2026-07/allowlists"):
        response = await client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.json() == UNAUTHORIZED


async def test_order_tracking_needs_its_own_token(client: httpx.AsyncClient) -> None:
    body = {"query": GLADLY_QUERY, "variables": {"emails": ["ann@example.com"]}}
    for response in (
        await client.post("/graphql", json=body, headers=LOOP),
        await client.get("/2022-10/shipments/search/1086"),
    ):
        assert response.status_code == 401
        assert response.json() == {"message": "401: Authentication Failed"}
    assert (await client.get("/api/v2/returns", headers=TRACKING)).status_code == 401


async def test_configured_token_is_the_only_one() -> None:
    app = create_sandbox_app(settings(sandbox_token="s3cret"), world=small_world())
    async with client_for(app) as client:
        wrong = await client.get("/api/v2/returns", headers=LOOP)
        right = await client.get("/api/v2/returns", headers={"x-AUTHORIZATION": "s3cret"})
        tracking = await client.get(
            "/2022-10/shipments/search/1086", headers={"X-Wonderment-Access-Token": "s3cret"}
        )
    assert wrong.status_code == 401 and wrong.json() == UNAUTHORIZED
    assert right.status_code == 200
    assert tracking.status_code == 200


# --- returns list ---------------------------------------------------------------------


async def _ids(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get("/api/v2/returns", params=params, headers=LOOP)
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["data"]]


async def test_returns_envelope_and_newest_update_first(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/api/v2/returns",
        params={"from": "2022-02-01", "to": "2026-12-31", "customer_email": "ann@example.com"},
        headers=LOOP,
    )
    body = response.json()
    assert body["status"] == "success"
    assert body["query"] == {
        "from": "2022-02-01T00:00:00+00:00",
        "to": "2026-12-31T23:59:59+00:00",
        "customer_email": "ann@example.com",
        "filter": "created_at",
        "limit": 300,
        "offset": 0,
    }
    assert [r["id"] for r in body["data"]] == ["102", "101"]
    assert await _ids(client) == ["104", "102", "103", "101"]


async def test_returns_customer_email_is_case_insensitive(client: httpx.AsyncClient) -> None:
    assert await _ids(client, customer_email="ANN@example.COM") == ["102", "101"]
    assert await _ids(client, customer_email="nobody@example.com") == []


async def test_returns_limit_and_offset(client: httpx.AsyncClient) -> None:
    assert await _ids(client, limit=2) == ["104", "102"]
    assert await _ids(client, limit=2, offset=2) == ["103", "101"]
    assert await _ids(client, offset=10) == []


async def test_returns_from_with_filter(client: httpx.AsyncClient) -> None:
    # 102 was created before Feb 1st but updated after it.
    assert await _ids(client, **{"from": "2026-02-01"}) == ["104", "103"]
    assert await _ids(client, **{"from": "2026-02-01", "filter": "updated_at"}) == [
        "104",
        "102",
        "103",
    ]
    # A date-only `to` covers that whole day; a datetime is exact.
    assert await _ids(client, to="2026-02-05") == ["104", "102", "103", "101"]
    assert await _ids(client, to="2026-02-05T12:00:00+00:00") == ["102", "103", "101"]
    assert await _ids(client, **{"from": "2026-02-05T23:30:00+00:00"}) == ["104"]
    assert await _ids(client, **{"from": "2026-02-05 23:30:01"}) == []


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"limit": "ten"}, "limit", "The limit must be an integer."),
        ({"limit": "0"}, "limit", "The limit must be at least 1."),
        ({"limit": "1001"}, "limit", "The limit must not be greater than 1000."),
        ({"offset": "-1"}, "offset", "The offset must be at least 0."),
        ({"filter": "deleted_at"}, "filter", "The selected filter is invalid."),
        ({"from": "yesterday"}, "from", "The from is not a valid date."),
        ({"from": "2026-02-02", "to": "2026-02-01"}, "to", "The to must be a date after or"),
    ],
)
async def test_returns_invalid_params(
    client: httpx.AsyncClient, params: dict[str, str], field: str, message: str
) -> None:
    response = await client.get("/api/v2/returns", params=params, headers=LOOP)
    assert response.status_code == 422
    body = response.json()
    assert body["message"].startswith(message)
    assert body["errors"][field][0] == body["message"]


async def test_returns_bad_limit_exact_body(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v2/returns?limit=abc", headers=LOOP)
    assert response.json() == {
        "message": "The limit must be an integer.",
        "errors": {"limit": ["The limit must be an integer."]},
    }


# --- notes ----------------------------------------------------------------------------


async def test_notes_array_shape_newest_first(client: httpx.AsyncClient) -> None:
    for version in ("v1", "2026-07"):
        response = await client.get(f"/api/{version}/warehouse/return/101/notes", headers=LOOP)
        assert response.status_code == 200
        assert response.json() == [
            {"id": 2, "content": "newer", "created_at": "2026-01-12 10:00:00"},
            {"id": 1, "content": "older", "created_at": "2026-01-11 10:00:00"},
        ]


async def test_notes_object_shape() -> None:
    app = create_sandbox_app(settings(sandbox_notes_shape="object"), world=small_world())
    async with client_for(app) as client:
        response = await client.get("/api/v1/warehouse/return/101/notes", headers=LOOP)
    assert response.json() == {
        "notes": [
            {"id": 2, "content": "newer", "created_at": "2026-01-12T10:00:00Z"},
            {"id": 1, "content": "older", "created_at": "2026-01-11T10:00:00Z"},
        ]
    }


async def test_no_notes_is_422_false(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/warehouse/return/103/notes", headers=LOOP)
    assert response.status_code == 422
    assert response.content == b"false"


async def test_notes_of_unknown_return(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get("/api/v1/warehouse/return/999/notes", headers=LOOP),
        await client.post("/api/v1/warehouse/return/999/note", json={"content": "x"}, headers=LOOP),
    ):
        assert response.status_code == 404
        assert response.json() == {"message": "No return found with this ID"}


async def test_add_note(client: httpx.AsyncClient, app: FastAPI) -> None:
    response = await client.post(
        "/api/v1/warehouse/return/103/note", json={"content": "Called the customer"}, headers=LOOP
    )
    assert response.status_code == 200
    assert response.json() is True
    notes = (await client.get("/api/v1/warehouse/return/103/notes", headers=LOOP)).json()
    assert [n["content"] for n in notes] == ["Called the customer"]
    assert isinstance(notes[0]["id"], int)
    assert app.state.world.notes["103"][0]["content"] == "Called the customer"


@pytest.mark.parametrize(
    "body",
    [{}, {"content": ""}, {"content": "   "}, {"content": "x" * 256}, {"content": 5}, "nope"],
)
async def test_add_note_validation(client: httpx.AsyncClient, body: Any) -> None:
    kwargs: dict[str, Any] = {"content": body} if isinstance(body, str) else {"json": body}
    response = await client.post("/api/v1/warehouse/return/103/note", headers=LOOP, **kwargs)
    assert response.status_code == 422
    assert response.json() == {
        "errors": {"message": "Content is required and must be less than 255 characters."}
    }


async def test_add_note_of_255_characters(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/warehouse/return/103/note", json={"content": "x" * 255}, headers=LOOP
    )
    assert response.status_code == 200


# --- deep links -----------------------------------------------------------------------


async def _link(client: httpx.AsyncClient, body: Any) -> httpx.Response:
    return await client.post("/api/v1/order/link", json=body, headers=LOOP)


async def test_deep_link(client: httpx.AsyncClient) -> None:
    first = await _link(client, {"name": "#1086", "zip": "43215", "gift": False})
    again = await _link(client, {"name": "#1086", "zip": " 43215 "})
    assert first.status_code == 200
    url = first.json()["url"]
    assert url.startswith("https://company.loopreturns.com/#/link/")
    assert again.json()["url"] == url


async def test_deep_link_with_email_as_zip(client: httpx.AsyncClient) -> None:
    response = await _link(client, {"name": "#1086", "zip": "ann@EXAMPLE.com"})
    assert response.status_code == 200
    assert "/#/link/" in response.json()["url"]


@pytest.mark.parametrize(
    "body", [{}, {"name": "#1086"}, {"zip": "43215"}, {"name": "", "zip": "1"}]
)
async def test_deep_link_missing_fields(client: httpx.AsyncClient, body: Any) -> None:
    response = await _link(client, body)
    assert response.status_code == 422
    assert response.json() == {
        "errors": {"message": 'Missing fields - "name" and "zip" are required.'}
    }


async def test_deep_link_unknown_order(client: httpx.AsyncClient) -> None:
    response = await _link(client, {"name": "#9999", "zip": "43215"})
    assert response.status_code == 400
    assert response.json() == {"errors": ["ORDER_NOT_FOUND"]}


async def test_deep_link_zip_mismatch(client: httpx.AsyncClient) -> None:
    for zip_code in ("90210", "bob@example.com"):
        response = await _link(client, {"name": "#1086", "zip": zip_code})
        assert response.status_code == 400
        assert response.json() == {
            "errors": ["The order could not be found with the provided information."]
        }


# --- allowlists -----------------------------------------------------------------------


async def _allow(client: httpx.AsyncClient, body: Any) -> httpx.Response:
    return await client.post("/api/v1/allowlists", json=body, headers=LOOP)


async def test_allowlist_create_get_delete(client: httpx.AsyncClient) -> None:
    created = await _allow(client, {"type": "email", "value": "abc@xyz.com"})
    assert created.status_code == 201
    entry = created.json()
    assert entry == {
        "id": entry["id"],
        "type": "email",
        "value": "abc@xyz.com",
        "secondary_value": None,
    }
    assert isinstance(entry["id"], int)
    fetched = await client.get(f"/api/v1/allowlists/{entry['id']}", headers=LOOP)
    assert fetched.json() == {**entry, "created_at": fetched.json()["created_at"]}
    assert len(fetched.json()["created_at"]) == len("2023-06-09 00:00:00")
    deleted = await client.delete(f"/api/v1/allowlists/{entry['id']}", headers=LOOP)
    assert deleted.status_code == 200
    assert deleted.json() == {"message": "Allowlist item deleted."}
    for response in (
        await client.get(f"/api/v1/allowlists/{entry['id']}", headers=LOOP),
        await client.delete(f"/api/v1/allowlists/{entry['id']}", headers=LOOP),
        await client.get("/api/v1/allowlists/not-a-number", headers=LOOP),
    ):
        assert response.status_code == 404
        assert response.json() == {"errors": {"code": "NOT_FOUND"}}


@pytest.mark.parametrize(
    ("body", "message", "fields"),
    [
        ({"type": "email"}, "The value field is required.", {"value"}),
        ({"type": "email", "value": "  "}, "The value field is required.", {"value"}),
        ({"type": "sku", "value": "x"}, "The selected type is invalid.", {"type"}),
        ({}, "The type field is required.", {"type", "value"}),
        ({"type": "order", "value": 5}, "The value must be a string.", {"value"}),
    ],
)
async def test_allowlist_validation(
    client: httpx.AsyncClient, body: Any, message: str, fields: set[str]
) -> None:
    response = await _allow(client, body)
    assert response.status_code == 422
    assert response.json()["message"] == message
    assert set(response.json()["errors"]) == fields


async def test_allowlist_pagination(client: httpx.AsyncClient) -> None:
    for value in ("a@example.com", "#1086", "b@example.com"):
        kind = "order" if value.startswith("#") else "email"
        assert (await _allow(client, {"type": kind, "value": value})).status_code == 201
    first = (await client.get("/api/v1/allowlists?per_page=2", headers=LOOP)).json()
    assert [e["value"] for e in first["data"]] == ["a@example.com", "#1086"]
    assert first["current_page"] == 1 and first["last_page"] == 2
    assert (first["from"], first["to"], first["total"], first["per_page"]) == (1, 2, 3, 2)
    assert first["prev_page_url"] is None
    assert first["path"] == "http://sandbox/api/v1/allowlists"
    assert first["next_page_url"] == "http://sandbox/api/v1/allowlists?per_page=2&page=2"
    assert [link["label"] for link in first["links"]] == [
        "&laquo; Previous",
        "1",
        "2",
        "Next &raquo;",
    ]
    second = (await client.get(first["next_page_url"], headers=LOOP)).json()
    assert [e["value"] for e in second["data"]] == ["b@example.com"]
    assert (second["from"], second["to"], second["next_page_url"]) == (3, 3, None)
    default = (await client.get("/api/2026-07/allowlists", headers=LOOP)).json()
    assert default["per_page"] == 100 and len(default["data"]) == 3
    empty = (await client.get("/api/v1/allowlists?page=5", headers=LOOP)).json()
    assert (empty["data"], empty["from"], empty["to"]) == ([], None, None)


# --- Order Tracking -------------------------------------------------------------------


async def test_graphql_gladly_query(seeded: httpx.AsyncClient) -> None:
    body = {"query": GLADLY_QUERY, "variables": {"emails": demo_emails()}}
    response = await seeded.post("/graphql", json=body, headers=TRACKING)
    assert response.status_code == 200
    orders = response.json()["data"]["orders"]
    assert len(orders) == 2
    for order in orders:
        assert set(order) == {"name", "shipments"}
        for shipment in order["shipments"]:
            assert set(shipment) == {"trackingCode", "status", "carrierDisplayName"}
    # Newest first: the order placed with the secondary address is the recent one.
    assert {s["status"] for s in orders[0]["shipments"]} == {"DELIVERED", "TRANSIT"}


async def test_graphql_matches_emails_case_insensitively(client: httpx.AsyncClient) -> None:
    query = '{ orders(input: {customerEmails: ["ANN@example.com"]}) { name createdAt ' + (
        "shipments { trackingCode eta deliveredAt trackingUrl } } }"
    )
    response = await client.post("/graphql", json={"query": query}, headers=TRACKING)
    orders = response.json()["data"]["orders"]
    assert [o["name"] for o in orders] == ["#1086"]
    assert orders[0]["createdAt"] == "2026-01-01T10:00:00+00:00"
    assert orders[0]["shipments"][1]["eta"] == "2026-01-08"
    unknown = {"query": GLADLY_QUERY, "variables": {"emails": ["nobody@example.com"]}}
    response = await client.post("/graphql", json=unknown, headers=TRACKING)
    assert response.json() == {"data": {"orders": []}}


@pytest.mark.parametrize(
    "body",
    [
        {"query": "{ customers { id } }"},
        {"query": "{ orders("},
        {"query": GLADLY_QUERY},
        {"query": GLADLY_QUERY, "variables": {"emails": None}},
        {"query": GLADLY_QUERY, "variables": ["a@example.com"]},
        {"variables": {}},
    ],
)
async def test_graphql_errors(client: httpx.AsyncClient, body: Any) -> None:
    response = await client.post("/graphql", json=body, headers=TRACKING)
    assert response.status_code == 200
    payload = response.json()
    assert payload["data"] is None
    assert payload["errors"] and all(isinstance(e["message"], str) for e in payload["errors"])


async def test_graphql_non_json_body(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", content=b"query { orders }", headers=TRACKING)
    assert response.status_code == 400
    assert response.json() == {"message": "Invalid request."}


async def test_shipment_search_by_order_name(client: httpx.AsyncClient) -> None:
    for term in (quote("#1086", safe=""), "1086"):
        response = await client.get(f"/2022-10/shipments/search/{term}", headers=TRACKING)
        assert response.status_code == 200
        body = response.json()
        assert body["name"] == "#1086"
        assert [s["trackingCode"] for s in body["shipments"]] == [
            "1Z999AA10123456784",
            "9400111899562537001234",
        ]
    shipment = body["shipments"][0]
    assert set(shipment) >= {
        "trackingUrl",
        "trackingCode",
        "carrierName",
        "eta",
        "serviceLevel",
        "order",
        "statusDetails",
        "events",
        "lineItems",
    }
    assert shipment["carrierName"] == "UPS"
    assert shipment["order"]["name"] == "#1086"
    assert shipment["statusDetails"]["status"] == "DELIVERED"
    assert shipment["events"][0] == shipment["statusDetails"]
    assert len(shipment["events"]) > 1
    assert shipment["lineItems"][0]["trackingCode"] == "1Z999AA10123456784"


async def test_shipment_search_by_tracking_code(client: httpx.AsyncClient) -> None:
    path = "/2022-10/shipments/search/9400111899562537001234"
    body = (await client.get(path, headers=TRACKING)).json()
    assert body["name"] == "#1086"
    assert [s["statusDetails"]["status"] for s in body["shipments"]] == ["TRANSIT"]


async def test_shipment_search_not_found_and_empty(client: httpx.AsyncClient) -> None:
    missing = await client.get("/2022-10/shipments/search/NOPE123", headers=TRACKING)
    assert missing.status_code == 200
    assert missing.content == b"null"
    for path in ("/2022-10/shipments/search/", "/2022-10/shipments/search/%20"):
        empty = await client.get(path, headers=TRACKING)
        assert empty.status_code == 400
        assert empty.json() == {"message": "Invalid request. Must include search term."}


async def test_health(seeded: httpx.AsyncClient, seeded_world: World) -> None:
    response = await seeded.get("/_sandbox/health")
    assert response.json() == {
        "status": "ok",
        "returns": len(seeded_world.returns),
        "orders": len(seeded_world.orders),
    }


async def test_works_mounted_under_a_prefix() -> None:
    sandbox = create_sandbox_app(settings(), world=small_world())
    outer = FastAPI()
    outer.mount("/sandbox", sandbox)
    async with client_for(outer) as client:
        refused = await client.get("/sandbox/api/v2/returns")
        served = await client.get("/sandbox/api/v2/returns", headers=LOOP)
        health = await client.get("/sandbox/_sandbox/health")
    assert refused.json() == UNAUTHORIZED
    assert [r["id"] for r in served.json()["data"]] == ["104", "102", "103", "101"]
    assert health.json()["returns"] == 4
    assert [path for _, path, _, _ in sandbox.state.faults.request_log] == ["/api/v2/returns"] * 2
