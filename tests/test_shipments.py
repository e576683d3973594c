"""Order Tracking's REST search read into orders and shipments, and one order's details
fetched through the client (against the sandbox, and Loop's errors with respx)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st

from loopdesk.customers.order_details import OrderTrackingNotConfigured, order_details
from loopdesk.domain.shipments import (
    TrackedItem,
    TrackedOrder,
    TrackedShipment,
    delivered_at,
    delivery,
    order_key,
    shipment_status,
    tracked_order,
)
from loopdesk.errors import InvalidInput, LoopAuthError, LoopUnavailable
from loopdesk.loop.tracking import OrderTrackingClient
from loopdesk.runtime import Upstream
from loopdesk.sandbox.app import create_sandbox_app
from loopdesk.sandbox.seed import EXCEPTION_PERSONAS, generate_world
from loopdesk.sandbox.world import World
from loopdesk.settings import Settings

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def _event(status: str, at: str, details: str = "") -> dict[str, Any]:
    return {"status": status, "date": at, "details": details or status.title(), "city": "Reno"}


def _body(*shipments: dict[str, Any], name: str = "#1001") -> dict[str, Any]:
    return {"name": name, "shipments": list(shipments)}


def _shipment(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "trackingUrl": "https://www.ups.com/track?tracknum=1Z1",
        "trackingCode": "1Z1",
        "carrierName": "UPS",
        "eta": None,
        "statusDetails": _event("TRANSIT", "2026-11-20T10:00:00.000Z", "Departed"),
        "events": [
            _event("TRANSIT", "2026-11-20T10:00:00.000Z", "Departed"),
            _event("PRE_TRANSIT", "2026-11-19T10:00:00.000Z"),
        ],
        "lineItems": [
            {
                "productName": "Linen Shirt",
                "variantName": "White / M",
                "sku": "LS-02",
                "quantity": 2,
            }
        ],
    }
    return {**base, **fields}


# --- the normalizer ------------------------------------------------------------------


def test_a_shipment_in_transit() -> None:
    order = tracked_order(_body(_shipment(eta="2026-12-04")))
    assert order is not None and order.name == "#1001"
    [shipment] = order.shipments
    assert shipment == TrackedShipment(
        tracking_code="1Z1",
        carrier="UPS",
        status="TRANSIT",
        tracking_url="https://www.ups.com/track?tracknum=1Z1",
        eta=date(2026, 12, 4),
        eta_pending=False,
        delivered_at=None,
        last_event="Departed",
        last_event_at=datetime(2026, 11, 20, 10, tzinfo=UTC),
        items=[TrackedItem("Linen Shirt", "White / M", "LS-02", 2)],
    )
    assert order.items == shipment.items
    assert delivered_at(order) is None and delivery(order) == "undelivered"


@pytest.mark.parametrize(
    ("eta", "expected", "pending"),
    [
        ("2026-04-24", date(2026, 4, 24), False),
        ("2026-04-24T18:00:00Z", date(2026, 4, 24), False),
        (None, None, False),
        ("pending", None, True),
        ("PENDING", None, True),
        ("soon", None, False),
        ("2026-13-45", None, False),
        (20260424, None, False),
        ({"date": "2026-04-24"}, None, False),
        ("", None, False),
    ],
)
def test_eta_variants(eta: Any, expected: date | None, pending: bool) -> None:
    order = tracked_order(_body(_shipment(eta=eta)))
    assert order is not None
    assert (order.shipments[0].eta, order.shipments[0].eta_pending) == (expected, pending)


def test_eta_from_the_status_details_when_the_shipment_has_none() -> None:
    details = {**_event("TRANSIT", "2026-11-20T10:00:00Z"), "eta": "2026-12-09"}
    raw = _shipment(statusDetails=details)
    del raw["eta"]
    order = tracked_order(_body(raw))
    assert order is not None and order.shipments[0].eta == date(2026, 12, 9)


def test_delivered_at_from_the_status_details() -> None:
    raw = _shipment(statusDetails=_event("DELIVERED", "2026-11-22T16:30:00.000Z", "Left at door"))
    order = tracked_order(_body(raw))
    assert order is not None
    assert order.shipments[0].delivered_at == datetime(2026, 11, 22, 16, 30, tzinfo=UTC)
    assert delivered_at(order) == datetime(2026, 11, 22, 16, 30, tzinfo=UTC)
    assert delivery(order) == "delivered"


def test_delivered_at_from_the_newest_delivered_event() -> None:
    # Delivered, then sent back: the status is RETURNED, the delivery an event.
    raw = _shipment(
        statusDetails=_event("RETURNED", "2026-11-25T10:00:00Z"),
        events=[
            _event("DELIVERED", "2026-11-21T10:00:00Z"),
            _event("RETURNED", "2026-11-25T10:00:00Z"),
            _event("DELIVERED", "2026-11-23T10:00:00Z"),
        ],
    )
    order = tracked_order(_body(raw))
    assert order is not None
    shipment = order.shipments[0]
    assert shipment.status == "RETURNED"
    assert shipment.delivered_at == datetime(2026, 11, 23, 10, tzinfo=UTC)
    # Not delivered now: the return window does not start from it.
    assert delivered_at(order) is None and delivery(order) == "undelivered"


def test_delivered_with_a_date_only_in_the_events() -> None:
    raw = _shipment(
        statusDetails={"status": "Delivered", "date": "garbage"},
        events=[_event("delivered", "2026-11-21 10:00:00")],
    )
    order = tracked_order(_body(raw))
    assert order is not None
    assert order.shipments[0].status == "DELIVERED"
    assert order.shipments[0].delivered_at == datetime(2026, 11, 21, 10, tzinfo=UTC)


def test_the_window_starts_at_the_last_delivery() -> None:
    first = _shipment(statusDetails=_event("DELIVERED", "2026-11-02T10:00:00Z"))
    second = _shipment(
        trackingCode="1Z2", statusDetails=_event("DELIVERED", "2026-11-05T10:00:00Z")
    )
    cancelled = _shipment(trackingCode="1Z3", statusDetails=_event("CANCELLED", "2026-11-01"))
    order = tracked_order(_body(first, second, cancelled))
    assert delivered_at(order) == datetime(2026, 11, 5, 10, tzinfo=UTC)
    # One parcel still on its way: the window has not started.
    moving = tracked_order(_body(first, _shipment(trackingCode="1Z4")))
    assert delivered_at(moving) is None and delivery(moving) == "undelivered"


@pytest.mark.parametrize(
    "order",
    [
        None,
        TrackedOrder("#1", []),
        TrackedOrder("#1", [TrackedShipment("1Z", "UPS", "")]),
        TrackedOrder("#1", [TrackedShipment("1Z", "UPS", "DELIVERED")]),  # no time
        TrackedOrder("#1", [TrackedShipment("1Z", "UPS", "CANCELLED")]),
    ],
)
def test_unknown_deliveries(order: TrackedOrder | None) -> None:
    assert delivered_at(order) is None
    assert delivery(order) == "unknown"


def test_odd_fields_read_as_absent() -> None:
    raw = {
        "trackingCode": 123,
        "carrierName": None,
        "carrierDisplayName": "USPS",
        "trackingUrl": "javascript:alert(1)",
        "statusDetails": "not an object",
        "events": [None, 3, {"status": "Shipment Stalled", "date": "2026-11-20T10:00:00Z"}],
        "lineItems": [None, {"productName": ["x"], "quantity": "3"}, {"quantity": True}],
    }
    order = tracked_order({"name": None, "shipments": [raw, None, "x"]})
    assert order is not None and order.name == ""
    [shipment] = order.shipments
    assert shipment.tracking_code == "123"
    assert shipment.carrier == "USPS"
    assert shipment.tracking_url is None
    assert shipment.status == "SHIPMENT_STALLED"
    assert shipment.last_event_at == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert shipment.items == [TrackedItem("", "", "", 3), TrackedItem("", "", "", 1)]


@pytest.mark.parametrize("body", [None, [], "null", 3, {"shipments": "x"}])
def test_bodies_without_an_order(body: Any) -> None:
    got = tracked_order(body)
    assert got is None or got.shipments == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("shipment_stalled", "SHIPMENT_STALLED"),
        ("Shipment Stalled", "SHIPMENT_STALLED"),
        ("SHIPMENT-STALLED", "SHIPMENT_STALLED"),
        (" delivered ", "DELIVERED"),
        (None, ""),
        (7, ""),
    ],
)
def test_shipment_status(value: Any, expected: str) -> None:
    assert shipment_status(value) == expected


@pytest.mark.parametrize(
    ("name", "key"), [("#1086", "1086"), (" #1086 ", "1086"), ("1086", "1086"), ("#AB-1", "ab-1")]
)
def test_order_key(name: str, key: str) -> None:
    assert order_key(name) == key


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)
_keys = st.sampled_from(
    [
        "name",
        "shipments",
        "trackingCode",
        "trackingUrl",
        "carrierName",
        "eta",
        "statusDetails",
        "events",
        "lineItems",
        "status",
        "date",
        "details",
        "productName",
        "variantName",
        "sku",
        "quantity",
    ]
)
_shaped = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=30)
    | st.just("pending")
    | st.just("DELIVERED")
    | st.just("2026-11-20T10:00:00Z")
    | st.just("2026-11-20"),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=6),
    max_leaves=40,
)


@settings(max_examples=400)
@given(st.one_of(_json, _shaped))
def test_never_raises_on_any_json(body: Any) -> None:
    order = tracked_order(body)
    delivered_at(order)
    delivery(order)
    if order is not None:
        json.dumps(order.to_json())  # and what it made is plain JSON


# --- one order's details through the client ------------------------------------------


@pytest.fixture
def world() -> World:
    return generate_world(customers=3, now=NOW.replace(hour=0))


@pytest.fixture
async def tracking(world: World) -> AsyncIterator[OrderTrackingClient]:
    settings = Settings()
    upstream = Upstream.from_settings(settings, sandbox=create_sandbox_app(settings, world=world))
    assert upstream.tracking is not None
    try:
        yield upstream.tracking
    finally:
        await upstream.aclose()


async def test_order_details_from_the_sandbox(tracking: OrderTrackingClient, world: World) -> None:
    persona = EXCEPTION_PERSONAS[2]  # the final-sale order
    for term in (persona.order_name, persona.order_name.lstrip("#"), f" {persona.order_name} "):
        order = await order_details(tracking, term)
        assert order is not None and order.name == persona.order_name
    assert order is not None
    [shipment] = order.shipments
    assert shipment.status == "DELIVERED"
    assert shipment.delivered_at == NOW.replace(hour=0) - timedelta(days=33) + timedelta(hours=15)
    # The items come from the data's line items: title, variant title, a stable SKU.
    assert order.items == [TrackedItem("Silk Scarf - Final Sale", "Floral", "SKU-70030011", 1)]


async def test_order_details_none_for_unknown_orders_and_tracking_codes(
    tracking: OrderTrackingClient, world: World
) -> None:
    assert await order_details(tracking, "#999999") is None
    code = world.orders[0]["shipments"][0]["trackingCode"]
    assert await order_details(tracking, code) is None  # another order's parcel


async def test_the_sandbox_sends_every_eta_variant(
    tracking: OrderTrackingClient, world: World
) -> None:
    seen: set[str] = set()
    for raw in world.orders:
        order = await order_details(tracking, raw["name"])
        assert order is not None
        for shipment in order.shipments:
            if shipment.eta_pending:
                seen.add("pending")
            elif shipment.eta is not None:
                seen.add("date")
            else:
                seen.add("null")
    big = generate_world(now=NOW.replace(hour=0))
    etas = {s["eta"] for o in big.orders for s in o["shipments"]}
    assert None in etas and "pending" in etas
    assert any(e not in (None, "pending") for e in etas)
    assert seen >= {"date", "null"}


async def test_order_details_without_order_tracking() -> None:
    with pytest.raises(OrderTrackingNotConfigured) as caught:
        await order_details(None, "#1001")
    assert caught.value.code == "order_tracking_not_configured"
    with pytest.raises(InvalidInput):
        await order_details(None, "  # ")


@pytest.fixture
def client() -> OrderTrackingClient:
    return OrderTrackingClient(
        base_url="https://tracking.test", token="sk_test", settings=Settings(http_retry_attempts=1)
    )


@respx.mock(base_url="https://tracking.test", assert_all_called=False)
async def test_order_details_errors_propagate(
    respx_mock: respx.MockRouter, client: OrderTrackingClient
) -> None:
    respx_mock.get(path__regex=r".*/gone$").mock(
        return_value=httpx.Response(404, json={"message": "We couldn't find that order"})
    )
    respx_mock.get(path__regex=r".*/down$").mock(return_value=httpx.Response(503, text="no"))
    respx_mock.get(path__regex=r".*/denied$").mock(
        return_value=httpx.Response(401, json={"message": "401: Authentication Failed"})
    )
    assert await order_details(client, "gone") is None
    with pytest.raises(LoopUnavailable):
        await order_details(client, "down")
    with pytest.raises(LoopAuthError):
        await order_details(client, "denied")
    await client.aclose()
