"""The sandbox's data: the seeded world and the contract's data file."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopdesk.errors import ConfigError
from loopdesk.sandbox.app import create_sandbox_app
from loopdesk.sandbox.catalog import LABEL_STATUSES, OUTCOMES, RETURN_STATES
from loopdesk.sandbox.data import load_world
from loopdesk.sandbox.seed import demo_emails, generate_world
from loopdesk.sandbox.world import World, parse_ts
from loopdesk.settings import Settings
from tests.conftest import CONTRACT_EXAMPLE

EXAMPLE = CONTRACT_EXAMPLE
NOW = datetime(2026, 3, 1, tzinfo=UTC)
MONEY = re.compile(r"^-?\d+\.\d{2}$")
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$")
LARAVEL = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
MONEY_FIELDS = (
    "total",
    "return_product_total",
    "return_discount_total",
    "return_tax_total",
    "return_total",
    "return_credit_total",
    "exchange_product_total",
    "exchange_discount_total",
    "exchange_tax_total",
    "exchange_total",
    "exchange_credit_total",
    "gift_card",
    "handling_fee",
    "refund",
    "upsell",
)


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(now=NOW)


def _dump(world: World) -> str:
    return json.dumps(
        [world.returns, world.notes, world.orders, world.allowlist, world.customers],
        sort_keys=True,
    )


def _returns(world: World) -> list[dict[str, Any]]:
    return list(world.returns.values())


def test_same_seed_same_world() -> None:
    assert _dump(generate_world(seed=7, now=NOW)) == _dump(generate_world(seed=7, now=NOW))
    assert _dump(generate_world(seed=7, now=NOW)) != _dump(generate_world(seed=8, now=NOW))


def test_default_now_is_stable_within_a_day() -> None:
    first, second = generate_world(customers=20), generate_world(customers=20)
    assert _dump(first) == _dump(second)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert _dump(first) == _dump(generate_world(customers=20, now=today))


def test_covers_every_state_outcome_and_label_status(world: World) -> None:
    returns = _returns(world)
    assert {r["state"] for r in returns} == set(RETURN_STATES)
    assert {r["outcome"] for r in returns} == set(OUTCOMES)
    assert {r["label_status"] for r in returns} == set(LABEL_STATUSES)


def test_label_placeholders(world: World) -> None:
    for item in _returns(world):
        label_fields = [item[k] for k in ("carrier", "tracking_number", "label_updated_at")]
        if item["label_status"] == "N/A":
            assert label_fields == ["N/A", "N/A", "N/A"]
        else:
            assert "N/A" not in label_fields
            assert ISO.match(item["label_updated_at"])


def test_exchanges_in_and_out_of_stock(world: World) -> None:
    exchanges = [x for r in _returns(world) for x in r["exchanges"]]
    assert {x["out_of_stock"] for x in exchanges} == {True, False}
    for x in exchanges:
        assert isinstance(x["exchange_order_id"], int)
        assert (x["out_of_stock_resolution"] is None) == (not x["out_of_stock"])
    for item in _returns(world):
        assert bool(item["exchanges"]) == item["outcome"].startswith("exchange")


def test_return_objects_look_like_loops(world: World) -> None:
    for item in _returns(world):
        assert isinstance(item["id"], str) and isinstance(item["destination_id"], int)
        assert ISO.match(item["created_at"]) and ISO.match(item["updated_at"])
        assert item["created_at"] <= item["updated_at"]
        assert all(MONEY.match(item[k]) for k in MONEY_FIELDS)
        for line in item["line_items"]:
            assert LARAVEL.match(line["returned_at"])
            assert Decimal(line["price"]) < 0 and MONEY.match(line["refund"])
        total = sum((Decimal(line["refund"]) for line in item["line_items"]), Decimal(0))
        assert Decimal(item["return_total"]) == total
        product = -sum((Decimal(line["price"]) for line in item["line_items"]), Decimal(0))
        assert Decimal(item["return_product_total"]) == product
        paid = Decimal(item["refund"]) + Decimal(item["gift_card"]) + Decimal(item["handling_fee"])
        credit = Decimal(item["return_credit_total"])
        assert paid + credit == Decimal(item["return_total"])


def test_timestamps_within_a_year_and_not_in_the_future(world: World) -> None:
    for item in _returns(world):
        assert NOW - timedelta(days=365) < parse_ts(item["created_at"])
        assert parse_ts(item["updated_at"]) <= NOW
    for order in world.orders:
        assert NOW - timedelta(days=365) < parse_ts(order["created_at"]) <= NOW


def test_customers_and_addresses(world: World) -> None:
    assert len(world.customers) >= 200
    assert Counter(len(c) for c in world.customers).keys() >= {1, 2, 3}
    primaries = {c[0] for c in world.customers}
    secondaries = {e for c in world.customers for e in c[1:]}
    shown = [r["customer"] for r in _returns(world)]
    assert any(e.casefold() in secondaries for e in shown)
    assert any(e != e.casefold() for e in shown)
    assert any(e in primaries for e in shown)


def test_notes_on_some_returns(world: World) -> None:
    with_notes = [rid for rid in world.returns if world.notes.get(rid)]
    assert 0 < len(with_notes) < len(world.returns)
    for notes in world.notes.values():
        assert all(isinstance(n["id"], int) and LARAVEL.match(n["created_at"]) for n in notes)


def test_every_return_has_its_order(world: World) -> None:
    for item in _returns(world):
        order = world.find_order(item["order_name"])
        assert order is not None
        assert order["customer_email"].casefold() == item["customer"].casefold()
        assert order["zip"]
        assert item["order_number"] == item["order_name"].lstrip("#")


def test_orders_have_shipments_in_many_statuses(world: World) -> None:
    counts = Counter(len(o["shipments"]) for o in world.orders)
    assert set(counts) == {1, 2, 3}
    statuses = {s["status"] for o in world.orders for s in o["shipments"]}
    assert statuses >= {
        "PRE_TRANSIT",
        "TRANSIT",
        "SHIPMENT_STALLED",
        "ATTEMPTED_DELIVERY",
        "DELIVERED",
        "RETURNED",
        "ERROR",
        "OUT_FOR_DELIVERY",
    }
    for shipment in (s for o in world.orders for s in o["shipments"]):
        assert (shipment["deliveredAt"] is not None) == (shipment["status"] == "DELIVERED")


def test_demo_customer(world: World) -> None:
    assert demo_emails() == ["primary@email.com", "secondary@email.com"]
    assert demo_emails() in world.customers
    demo = [r for r in _returns(world) if r["customer"].casefold() in demo_emails()]
    assert 6 <= len(demo) <= 10
    assert {r["customer"].casefold() for r in demo} == set(demo_emails())
    orders = world.orders_for_emails(demo_emails())
    assert len(orders) == 2
    assert {r["order_name"] for r in demo} == {o["name"] for o in orders}


def test_small_worlds_still_work() -> None:
    small = generate_world(customers=1, now=NOW)
    assert small.customers == [demo_emails()]
    assert len(small.orders) == 2


def test_load_contract_example() -> None:
    world = load_world(EXAMPLE)
    raw = json.loads(EXAMPLE.read_text())
    assert list(world.returns) == [r["id"] for r in raw["returns"]]
    assert world.returns["25044777"] == raw["returns"][0]
    assert world.notes["25044801"][0]["content"] == "Customer dropped off at UPS"
    assert world.find_order("#1101") is not None
    assert world.shop["domain"] == "company.loopreturns.com"


def _write(tmp_path: Path, body: Any) -> Path:
    path = tmp_path / "world.json"
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    return path


def _stamp(days: int) -> str:
    return (NOW - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def test_load_minimal_file_with_defaults(tmp_path: Path) -> None:
    item = {"id": 7, "customer": "a@example.com", "created_at": _stamp(3), "updated_at": _stamp(2)}
    world = load_world(_write(tmp_path, {"returns": [item], "unknown": 1}))
    assert world.returns == {"7": item}
    assert world.orders == [] and world.allowlist == [] and world.notes == {}
    assert world.shop["currency"] == "USD"


def test_loaded_ids_do_not_collide(tmp_path: Path) -> None:
    item = {
        "id": "1",
        "customer": "a@example.com",
        "created_at": _stamp(3),
        "updated_at": _stamp(2),
    }
    note = {"id": 9000000, "content": "x", "created_at": "2026-01-01 10:00:00"}
    entry = {"id": 9000001, "type": "email", "value": "a@example.com"}
    data = {"returns": [item], "notes": {"1": [note]}, "allowlist": [entry]}
    world = load_world(_write(tmp_path, data))
    assert world.add_note("1", "y")["id"] == 9000001
    assert world.add_allowlist("order", "#1")["id"] == 9000002
    assert world.allowlist[0]["secondary_value"] is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "invalid JSON at line 1"),
        ("[]", "must be a JSON object"),
        ({"orders": []}, "returns: field required"),
        ({"returns": [{"customer": "a", "created_at": "2026-01-01"}]}, "returns[0].id: field"),
        (
            {"returns": [{"id": 1.5, "customer": "a", "created_at": "x", "updated_at": "x"}]},
            "returns[0].id: must be a string or an integer",
        ),
        (
            {"returns": [{"id": 1, "customer": 5, "created_at": "2026-01-01", "updated_at": "x"}]},
            "returns[0].customer",
        ),
        (
            {
                "returns": [
                    {"id": 1, "customer": "a", "created_at": "2026-01-01", "updated_at": "x"}
                ]
            },
            "returns[0].updated_at: not an ISO-8601 timestamp",
        ),
        ({"returns": [], "shop": {"return_window_days": "30"}}, "shop.return_window_days"),
        ({"returns": [], "orders": [{"name": "#1"}]}, "orders[0].customer_email"),
        (
            {"returns": [], "allowlist": [{"id": 1, "type": "sku", "value": "x"}]},
            "allowlist[0].type",
        ),
        ({"returns": [], "notes": {"1": [{"id": "a"}]}}, "notes.1[0].id"),
    ],
)
def test_broken_files_name_path_and_reason(tmp_path: Path, body: Any, reason: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        load_world(path)
    assert str(path) in caught.value.message
    assert reason in caught.value.message


def test_duplicate_return_ids_rejected(tmp_path: Path) -> None:
    item = {"id": "1", "customer": "a", "created_at": _stamp(3), "updated_at": _stamp(2)}
    with pytest.raises(ConfigError, match=r"returns\[1\]\.id: duplicate"):
        load_world(_write(tmp_path, {"returns": [item, {**item, "id": 1}]}))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_world(tmp_path / "absent.json")


async def test_app_loads_settings_data_file(tmp_path: Path) -> None:
    item = {
        "id": "1",
        "customer": "a@example.com",
        "created_at": _stamp(3),
        "updated_at": _stamp(2),
    }
    path = _write(tmp_path, {"returns": [item]})
    app = create_sandbox_app(Settings(sandbox_data=path))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        health = (await client.get("/_sandbox/health")).json()
    assert health == {"status": "ok", "returns": 1, "orders": 0}


def test_app_refuses_a_broken_data_file_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="returns: field required"):
        create_sandbox_app(Settings(sandbox_data=_write(tmp_path, {})))


def test_app_seeds_from_settings() -> None:
    app = create_sandbox_app(Settings(sandbox_seed=5, sandbox_customers=12))
    assert _dump(app.state.world) == _dump(generate_world(5, 12))


def test_demo_orders_have_fixed_names(world: World) -> None:
    assert [o["name"] for o in world.orders_for_emails(demo_emails())] == ["#1120", "#1086"]
    first = world.find_order("#1086")
    assert first is not None and first["customer_email"] == "primary@email.com"
    names = [o["name"] for o in world.orders]
    assert len(names) == len(set(names))


# The return object's fields as the reference lists them (loop-api.md section 2.1, copied
# verbatim so the suite needs nothing beside the repository).
REFERENCE_RETURN_FIELDS = (
    "id, state, created_at, updated_at, edited_at?, total, outcome, order_id, order_name, "
    "provider_order_id, order_number, provider_order_number, customer (email), origin_country, "
    "origin_country_code, multi_currency (bool), currency, "
    "{return,exchange}_{product,discount,tax}_total, return_total, return_credit_total, "
    "exchange_total, exchange_credit_total, gift_card, gift_card_order_name, gift_card_order_id, "
    "handling_fee, refund, upsell, line_items[], exchanges[], carrier, tracking_number, "
    "label_status, label_url, label_rate, label_updated_at, status_page_url, destination_id, "
    "return_method, package_reference"
)
REFERENCE_LINE_ITEM_FIELDS = (
    "line_item_id, provider_line_item_id, product_id, variant_id, sku, title, price, discount, "
    'tax, refund, returned_at ("YYYY-MM-DD HH:MM:SS", no TZ), exchange_variant, return_reason, '
    'parent_return_reason, return_comment, barcode, outcome ("default"), '
    "provider_restock_location_id"
)
REFERENCE_EXCHANGE_FIELDS = (
    'exchange_id, exchange_order_id (int), exchange_order_name ("EXC-1086-1"), product_id, '
    'variant_id, sku, type ("exchange"), title, price, discount, tax, total, out_of_stock (bool), '
    "out_of_stock_resolution (nullable)"
)


def _field_names(listing: str) -> list[str]:
    """The names in one of the reference's lists: notes in parentheses and `?`/`[]`
    markers dropped, `{a,b}_{c,d}_total` expanded."""
    names: list[str] = []
    # Entries are separated by ", "; the alternatives inside braces by a bare ",".
    for entry in re.sub(r"\([^)]*\)", "", listing).split(", "):
        name = entry.strip().rstrip("?").removesuffix("[]")
        if not name:
            continue
        segments = re.split(r"(\{[^}]*\})", name)
        options = [seg[1:-1].split(",") if seg.startswith("{") else [seg] for seg in segments]
        names += ["".join(combo) for combo in itertools.product(*options)]
    return names


def test_field_lists_parse_as_the_reference_means() -> None:
    fields = _field_names(REFERENCE_RETURN_FIELDS)
    assert len(fields) == len(set(fields)) == 45
    assert {"return_product_total", "exchange_tax_total", "edited_at", "customer"} <= set(fields)
    assert "line_items" in fields and "multi_currency" in fields


@pytest.mark.parametrize(
    ("listing", "rows"),
    [
        (REFERENCE_RETURN_FIELDS, lambda w: _returns(w)),
        (REFERENCE_LINE_ITEM_FIELDS, lambda w: [x for r in _returns(w) for x in r["line_items"]]),
        (REFERENCE_EXCHANGE_FIELDS, lambda w: [x for r in _returns(w) for x in r["exchanges"]]),
    ],
    ids=["return", "line_item", "exchange"],
)
def test_every_reference_field_is_non_null_somewhere(world: World, listing: str, rows: Any) -> None:
    """Every field a client may meet carries a real value at least once: a client that
    only ever saw nulls (`edited_at`, `label_url`, ...) would not be tested at all."""
    found = rows(world)
    assert found
    for name in _field_names(listing):
        assert all(name in row for row in found), f"{name} missing from some rows"
        values = [row[name] for row in found if row[name] not in (None, "", [], "N/A")]
        assert values, f"{name} is never set in the seeded world"
