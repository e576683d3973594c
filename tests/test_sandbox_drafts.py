"""The sandbox's Draft Returns (Return Create API) answer like Loop's, over raw HTTP.

Most tests build a small world of their own (dates relative to now); the last ones walk
the seeded world's draft personas, which the README and demos name.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loopdesk.errors import ConfigError
from loopdesk.sandbox.app import create_sandbox_app
from loopdesk.sandbox.data import load_world
from loopdesk.sandbox.seed import generate_world
from loopdesk.sandbox.seed_drafts import DRAFT_PERSONAS, default_reasons
from loopdesk.sandbox.webhooks import configure_webhooks
from loopdesk.sandbox.world import World, iso
from loopdesk.settings import Settings
from tests.conftest import CONFORMANCE
from tests.test_sandbox_webhooks import Receiver

LOOP = {"X-Authorization": "test-token"}
DRAFTS = "/api/v1/draft-returns"
FIXTURES = CONFORMANCE / "loop_returns-1.6" / "actions"
UNAVAILABLE = {
    "errors": [
        {
            "code": "action-validation-failed",
            "message": "Action is not available in the current draft return state",
        }
    ]
}
PRODUCT_ID = 8832390168727
L_BLUE, M_BLUE, S_GREEN, M_GREEN = 48087696801943, 48087696867479, 48087696900001, 48087696900002
CARGO, FINAL, RUNNER = 401103686, 401103687, 401103688


def fixture(action: str, case: str) -> Any:
    return json.loads((FIXTURES / action / "_test_" / "data" / case / "rawData.json").read_text())


def _order(name: str, days_ago: float, items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    placed = datetime.now(UTC) - timedelta(days=days_ago)
    return {
        "name": name,
        "customer_email": extra.get("email", "ann@example.com"),
        "zip": extra.get("zip", "90210"),
        "created_at": iso(placed),
        "shipments": [],
        "line_items": items,
    }


def _line(
    item_id: int, variant: int = L_BLUE, price: str = "85.00", **extra: Any
) -> dict[str, Any]:
    return {
        "id": item_id,
        "title": extra.get("title", "Ambush Cargo"),
        "variant_title": extra.get("variant_title", "M / Green"),
        "price": price,
        "product_id": extra.get("product_id", PRODUCT_ID),
        "variant_id": variant,
        "tags": extra.get("tags", []),
    }


def _returned(rid: str, order: str, line_id: int, state: str) -> dict[str, Any]:
    stamp = iso(datetime.now(UTC) - timedelta(days=2))
    return {
        "id": rid,
        "state": state,
        "customer": "ann@example.com",
        "created_at": stamp,
        "updated_at": stamp,
        "order_id": "50265228",
        "order_name": order,
        "provider_order_id": "4803021602967",
        "line_items": [{"line_item_id": str(line_id)}],
    }


def small_world() -> World:
    cargo = {
        "id": PRODUCT_ID,
        "title": "Ambush Cargo",
        "options": ["Size", "Color"],
        "product_type": "Pants",
        "variants": [
            {"id": L_BLUE, "title": "L / Blue", "price": "85.00", "inventory": 4},
            {"id": M_BLUE, "title": "M / Blue", "price": "85.00", "inventory": 0},
            {"id": S_GREEN, "title": "S / Green", "price": "95.00", "inventory": 2},
            {"id": M_GREEN, "title": "M / Green", "price": "85.00", "inventory": 1},
        ],
    }
    other = {
        "id": 1,
        "title": "Wool Runner",
        "variants": [{"id": 11, "title": "10", "price": "98.00", "inventory": 5}],
    }
    orders = [
        _order(
            "#1234",
            5,
            [
                _line(CARGO, M_GREEN),
                _line(FINAL, M_GREEN, tags=["Final-Sale"]),
                _line(RUNNER, 11, "98.00", title="Wool Runner", variant_title="10", product_id=1),
            ],
        ),
        _order("#2000", 60, [_line(2000001)], zip="10001"),
        _order("#3000", 5, [_line(3000001), _line(3000002), _line(3000003)]),
        _order("#4000", 29.5, [_line(4000001)]),
    ]
    returns = {
        r["id"]: r
        for r in (
            _returned("25044100", "#3000", 3000001, "open"),
            _returned("25044120", "#3000", 3000003, "cancelled"),
        )
    }
    return World(
        returns=returns,
        orders=orders,
        products=[cargo, other],
        reasons=default_reasons(),
        return_methods=[
            {"id": 1, "name": "Prepaid mail-in label", "type": "mail"},
            {"id": 3, "name": "Happy Returns", "type": "dropoff"},
        ],
    )


def make_app(world: World | None = None, **settings: Any) -> FastAPI:
    config = Settings(sandbox_rate_limit_per_minute=0, **settings)
    return create_sandbox_app(config, world=world or small_world())


class Loop:
    """Raw HTTP to the sandbox's draft endpoints."""

    def __init__(self, http: httpx.AsyncClient, app: FastAPI) -> None:
        self.http = http
        self.app = app

    async def create(
        self, name: str = "#1234", secondary: str = "90210", **extra: Any
    ) -> httpx.Response:
        return await self.http.post(
            DRAFTS, json={"order_name": name, "secondary_input": secondary, **extra}, headers=LOOP
        )

    async def draft(self, name: str = "#1234", secondary: str = "90210", **extra: Any) -> int:
        response = await self.create(name, secondary, **extra)
        assert response.status_code == 200, response.text
        draft_id: int = response.json()["draft_return"]["id"]
        return draft_id

    async def post(self, draft: int, path: str, body: Any = None, **headers: str) -> httpx.Response:
        return await self.http.post(
            f"{DRAFTS}/{draft}{path}", json=body, headers={**LOOP, **headers}
        )

    async def get(self, draft: int, path: str = "", **headers: str) -> httpx.Response:
        return await self.http.get(f"{DRAFTS}/{draft}{path}", headers={**LOOP, **headers})

    async def add(self, draft: int, line_item: int) -> int:
        response = await self.post(draft, "/returning-items", {"order_line_item_id": line_item})
        assert response.status_code == 200, response.text
        items = response.json()["draft_return"]["returning_items"]
        return int(next(i["id"] for i in items if i["order_line_item_id"] == line_item))

    async def item(self, draft: int, item: int, action: str, body: Any) -> httpx.Response:
        return await self.post(draft, f"/returning-items/{item}/{action}", body)

    async def ready_item(self, draft: int, line_item: int, reason: int = 1) -> int:
        item = await self.add(draft, line_item)
        assert (
            await self.item(draft, item, "return-reason", {"reason_id": reason})
        ).status_code == 200
        return item

    async def finalize(self, draft: int) -> httpx.Response:
        return await self.post(draft, "/finalize-items")

    async def choose(self, draft: int, credit: str | None = "refund", method: int = 1) -> None:
        if credit is not None:
            assert (
                await self.post(draft, "/credit-type", {"credit_type": credit})
            ).status_code == 200
        assert (
            await self.post(draft, "/select-return-method", {"return_method_id": method})
        ).status_code == 200

    async def control(self, path: str, body: Any) -> httpx.Response:
        return await self.http.post(f"/_sandbox{path}", json=body)


@pytest.fixture
def app() -> FastAPI:
    return make_app()


@pytest.fixture
async def loop(app: FastAPI) -> AsyncIterator[Loop]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
        yield Loop(http, app)


def rels(body: dict[str, Any]) -> list[str]:
    return [link["rel"] for link in body["links"]]


def link(body: dict[str, Any], rel: str) -> dict[str, Any]:
    return next(x for x in body["links"] if x["rel"] == rel)


# --- creating a draft: the order, its eligibility -------------------------------------


async def test_create_lists_eligible_and_final_sale_items(loop: Loop) -> None:
    response = await loop.create()
    assert response.status_code == 200
    body = response.json()
    draft = body["draft_return"]
    assert isinstance(draft["id"], int) and draft["state"] == "created"
    assert draft["returning_items"] == [] and draft["cart_items"] == [] and "return_id" not in draft
    context = body["context"]
    assert context["items_eligible_to_return"] == [
        {"order_line_item_id": CARGO},
        {"order_line_item_id": RUNNER},
    ]
    assert context["items_not_eligible_to_return"] == [
        {"order_line_item_id": FINAL, "ineligibility_code": "final-sale"}
    ]
    order = context["order"]
    assert isinstance(order["id"], int) and order["currency"] == "USD"
    assert order["line_items"][0] == {
        "id": CARGO,
        "title": "Ambush Cargo",
        "variant_title": "M / Green",
        "price": 8500,
        "image": None,
        "provider_product_id": PRODUCT_ID,
        "provider_variant_id": M_GREEN,
    }
    assert [x["price"] for x in order["line_items"]] == [8500, 8500, 9800]
    assert context["return_reasons"][4] == {"id": 5, "name": "Arrived damaged"}
    assert context["exchange_options"] == {}
    assert body["return_method_options"] == [
        {"id": 1, "name": "Prepaid mail-in label", "type": "mail"},
        {"id": 3, "name": "Happy Returns", "type": "dropoff"},
    ]
    assert rels(body) == ["add-returning-item", "cancel-draft-return"]
    add = link(body, "add-returning-item")
    assert add["href"] == f"{DRAFTS}/{draft['id']}/returning-items"
    assert add["method"] == "POST" and add["is_required"] is True and add["description"]
    assert "is_required" not in link(body, "cancel-draft-return")


async def test_create_refusals(loop: Loop) -> None:
    async def refused(body: Any) -> httpx.Response:
        response = await loop.http.post(DRAFTS, json=body, headers=LOOP)
        assert response.status_code == 422
        return response

    assert (await refused({"secondary_input": "90210"})).json() == fixture(
        "check_eligibility", "missing_fields"
    )
    assert (await refused({"order_name": "#1234"})).json() == {
        "message": "secondary_input is required"
    }
    bad_gift = await refused({"order_name": "#1234", "secondary_input": "90210", "is_gift": "yes"})
    assert bad_gift.json() == {"message": "is_gift must be true or false"}
    not_json = await loop.http.post(DRAFTS, content=b"{", headers=LOOP)
    assert not_json.status_code == 422 and not_json.json()["message"] == "order_name is required"
    unknown = await loop.create("#9999")
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["code"] == "order-not-found"
    mismatch = await loop.create("#1234", "10001")
    assert mismatch.status_code == 422
    assert mismatch.json()["errors"][0]["code"] == "secondary-input-mismatch"
    # The order's email is accepted as well as its ZIP, as Loop's deep link does.
    assert (await loop.create("#1234", "ANN@example.com")).status_code == 200


async def test_eligibility_follows_the_order_age(loop: Loop) -> None:
    old = (await loop.create("#2000", "10001")).json()
    assert old["context"]["items_eligible_to_return"] == []
    assert old["context"]["items_not_eligible_to_return"] == [
        {"order_line_item_id": 2000001, "ineligibility_code": "outside-return-window"}
    ]
    assert rels(old) == ["cancel-draft-return"]  # nothing to add
    refused = await loop.post(
        old["draft_return"]["id"], "/returning-items", {"order_line_item_id": 2000001}
    )
    assert refused.status_code == 422 and refused.json() == {"message": "line item is not eligible"}
    # 29.5 days old: inside the 30-day window, until the clock moves a day.
    assert (await loop.create("#4000")).json()["context"]["items_eligible_to_return"] != []
    assert (
        await loop.control("/draft-returns/clock", {"advance_seconds": 86_400})
    ).status_code == 200
    later = (await loop.create("#4000")).json()["context"]
    assert later["items_not_eligible_to_return"][0]["ineligibility_code"] == "outside-return-window"


async def test_returned_items_are_not_eligible_unless_their_return_was_cancelled(
    loop: Loop,
) -> None:
    context = (await loop.create("#3000")).json()["context"]
    assert context["items_eligible_to_return"] == [
        {"order_line_item_id": 3000002},
        {"order_line_item_id": 3000003},
    ]
    assert context["items_not_eligible_to_return"] == [
        {"order_line_item_id": 3000001, "ineligibility_code": "already-returned"}
    ]


# --- created: items, reasons, types, exchanges -----------------------------------------


async def test_links_follow_each_step_while_created(loop: Loop) -> None:
    draft = await loop.draft()
    item = await loop.add(draft, CARGO)
    body = (await loop.get(draft)).json()
    assert rels(body) == [
        "add-returning-item",
        "remove-returning-item",
        "set-return-reason",
        "set-return-type",
        "cancel-draft-return",
    ]
    assert link(body, "add-returning-item")["is_required"] is False
    reason = link(body, "set-return-reason")
    assert reason["href"] == f"{DRAFTS}/{draft}/returning-items/{item}/return-reason"
    assert reason["is_required"] is True and reason["fields"][0]["name"] == "reason_id"
    assert link(body, "remove-returning-item")["method"] == "DELETE"
    assert body["draft_return"]["returning_items"] == [
        {"id": item, "order_line_item_id": CARGO, "return_type": "credit"}
    ]
    set_reason = await loop.item(draft, item, "return-reason", {"reason_id": 5})
    assert set_reason.status_code == 200
    after = set_reason.json()
    assert after["draft_return"]["returning_items"][0]["reason_id"] == 5
    assert link(after, "set-return-reason")["is_required"] is False
    assert link(after, "finalize-items") == {
        "rel": "finalize-items",
        "href": f"{DRAFTS}/{draft}/finalize-items",
        "method": "POST",
        "is_required": True,
        "description": "Confirm the items of the return",
        "fields": [],
    }


async def test_exchange_catalog_appears_only_once_the_type_is_exchange(loop: Loop) -> None:
    draft = await loop.draft()
    item = await loop.ready_item(draft, CARGO)
    early = await loop.item(draft, item, "exchange-item", {"variant_id": L_BLUE})
    assert early.status_code == 422 and early.json() == UNAVAILABLE
    typed = await loop.item(draft, item, "return-type", {"return_type": "exchange"})
    assert typed.status_code == 200
    body = typed.json()
    options = body["context"]["exchange_options"]
    assert list(options) == [str(item)]
    catalog = options[str(item)]
    assert catalog["product_options"] == [
        {"name": "Size", "values": ["L", "M", "S"]},
        {"name": "Color", "values": ["Blue", "Green"]},
    ]
    variants = {v["variant_id"]: v for v in catalog["product_variants"]}
    assert variants[L_BLUE] == {
        "product_id": PRODUCT_ID,
        "variant_id": L_BLUE,
        "title": "Ambush Cargo",
        "variant_title": "L / Blue",
        "product_type": "Pants",
        "options": {"Size": "L", "Color": "Blue"},
        "image": None,
        "price": 8500,
        "currency": "USD",
        "is_available": True,
    }
    # Sold out: unavailable, and (as in Loop's fixture) no price.
    assert variants[M_BLUE]["is_available"] is False and "price" not in variants[M_BLUE]
    assert variants[S_GREEN]["price"] == 9500
    # Until the exchange variant is chosen the items cannot be finalized.
    assert "finalize-items" not in rels(body)
    assert link(body, "add-exchange-item")["is_required"] is True
    sold_out = await loop.item(draft, item, "exchange-item", {"variant_id": M_BLUE})
    assert sold_out.status_code == 422 and sold_out.json() == fixture(
        "add_exchange_item", "server_error"
    )
    foreign = await loop.item(draft, item, "exchange-item", {"variant_id": 11})
    assert foreign.status_code == 422 and foreign.json() == {
        "message": "variant not available for exchange"
    }
    added = await loop.item(draft, item, "exchange-item", {"variant_id": L_BLUE})
    assert added.status_code == 200
    cart = added.json()["draft_return"]["cart_items"]
    assert [
        (
            c["variant_id"],
            c["exchange_type"],
            c["exchange_for_returning_item_id"],
            c["variant_title"],
        )
        for c in cart
    ] == [(L_BLUE, "exchange", item, "L / Blue")]
    assert "finalize-items" in rels(added.json())
    # Back to credit: the exchange and its catalog go.
    credit = (await loop.item(draft, item, "return-type", {"return_type": "credit"})).json()
    assert (
        credit["draft_return"]["cart_items"] == [] and credit["context"]["exchange_options"] == {}
    )
    assert "add-exchange-item" not in rels(credit)


async def test_item_validation(loop: Loop) -> None:
    draft = await loop.draft()

    async def add(body: Any) -> tuple[int, Any]:
        response = await loop.post(draft, "/returning-items", body)
        return response.status_code, response.json()

    assert await add({"order_line_item_id": 111}) == (
        422,
        fixture("add_return_item", "server_error"),
    )
    assert await add({"order_line_item_id": FINAL}) == (
        422,
        {"message": "line item is not eligible"},
    )
    assert await add({"order_line_item_id": str(CARGO)}) == (
        422,
        {"message": "order_line_item_id is required"},
    )
    item = await loop.add(draft, CARGO)
    assert await add({"order_line_item_id": CARGO}) == (
        422,
        {"message": "line item is already in the draft return"},
    )
    for body in ({"reason_id": 99}, {"reason_id": "5"}, {}):
        bad = await loop.item(draft, item, "return-reason", body)
        assert bad.status_code == 422 and bad.json() == fixture("set_return_reason", "server_error")
    bad_type = await loop.item(draft, item, "return-type", {"return_type": "store_credit"})
    assert bad_type.status_code == 422 and bad_type.json() == fixture(
        "set_return_type", "server_error"
    )
    missing = await loop.item(draft, 42, "return-reason", {"reason_id": 1})
    assert missing.status_code == 404 and missing.json() == {"message": "returning item not found"}
    bad_variant = await loop.item(draft, item, "return-type", {"return_type": "exchange"})
    assert bad_variant.status_code == 200
    no_variant = await loop.item(draft, item, "exchange-item", {"variant_id": "8002"})
    assert no_variant.status_code == 422 and no_variant.json() == {
        "message": "variant_id is required"
    }


async def test_unknown_drafts_are_404_everywhere(loop: Loop) -> None:
    expected = fixture("cancel_draft_return", "server_error")
    for response in (
        await loop.get(55501),
        await loop.get(55501, "/totals"),
        await loop.post(55501, "/cancel"),
        await loop.post(55501, "/finalize-items"),
        await loop.post(55501, "/returning-items", {"order_line_item_id": CARGO}),
        await loop.http.get(f"{DRAFTS}/abc", headers=LOOP),
    ):
        assert response.status_code == 404 and response.json() == expected


async def test_removing_a_returning_item(loop: Loop) -> None:
    draft = await loop.draft()
    item = await loop.add(draft, CARGO)
    await loop.item(draft, item, "return-type", {"return_type": "exchange"})
    await loop.item(draft, item, "exchange-item", {"variant_id": L_BLUE})
    removed = await loop.http.delete(f"{DRAFTS}/{draft}/returning-items/{item}", headers=LOOP)
    assert removed.status_code == 200
    body = removed.json()
    assert (
        body["draft_return"]["returning_items"] == [] and body["draft_return"]["cart_items"] == []
    )
    again = await loop.http.delete(f"{DRAFTS}/{draft}/returning-items/{item}", headers=LOOP)
    assert again.status_code == 404
    other = await loop.ready_item(draft, RUNNER)
    await loop.finalize(draft)
    late = await loop.http.delete(f"{DRAFTS}/{draft}/returning-items/{other}", headers=LOOP)
    assert late.status_code == 422 and late.json() == UNAVAILABLE


# --- items-finalized -------------------------------------------------------------------


async def test_finalized_links_and_refusals(loop: Loop) -> None:
    draft = await loop.draft()
    early_totals = await loop.get(draft, "/totals")
    assert early_totals.status_code == 422 and early_totals.json() == fixture(
        "get_draft_totals", "server_error"
    )
    early_credit = await loop.post(draft, "/credit-type", {"credit_type": "refund"})
    assert early_credit.status_code == 422 and early_credit.json() == UNAVAILABLE
    not_ready = await loop.finalize(draft)  # no items yet
    assert not_ready.status_code == 422 and not_ready.json() == UNAVAILABLE
    await loop.ready_item(draft, CARGO)
    finalized = await loop.finalize(draft)
    assert finalized.status_code == 200
    body = finalized.json()
    assert body["draft_return"]["state"] == "items-finalized"
    assert rels(body) == [
        "totals",
        "set-credit-type",
        "select-return-method",
        "cancel-draft-return",
    ]
    assert link(body, "totals")["method"] == "GET" and "is_required" not in link(body, "totals")
    assert link(body, "set-credit-type")["is_required"] is True
    twice = await loop.finalize(draft)
    assert twice.status_code == 409 and twice.json() == fixture("finalize_items", "server_error")
    late_add = await loop.post(draft, "/returning-items", {"order_line_item_id": RUNNER})
    assert late_add.status_code == 422 and late_add.json() == UNAVAILABLE
    bad_credit = await loop.post(draft, "/credit-type", {"credit_type": "cash"})
    assert bad_credit.status_code == 422 and bad_credit.json() == fixture(
        "set_credit_type", "server_error"
    )
    bad_method = await loop.post(draft, "/select-return-method", {"return_method_id": 2})
    assert bad_method.status_code == 422 and bad_method.json() == fixture(
        "select_return_method", "server_error"
    )
    early_submit = await loop.post(draft, "/submit")
    assert early_submit.status_code == 422 and early_submit.json() == fixture(
        "submit_return", "server_error"
    )
    assert (await loop.post(draft, "/credit-type", {"credit_type": "refund"})).status_code == 200
    chosen = await loop.post(draft, "/select-return-method", {"return_method_id": 3})
    after = chosen.json()
    assert after["draft_return"]["credit_type"] == "refund"
    assert after["draft_return"]["return_method_id"] == 3
    assert rels(after)[-2:] == ["submit-draft-return", "cancel-draft-return"]
    assert link(after, "submit-draft-return")["is_required"] is True


# --- totals, fees, price differences ---------------------------------------------------


async def test_totals_in_both_shapes(loop: Loop) -> None:
    draft = await loop.draft()
    await loop.ready_item(draft, CARGO)
    await loop.finalize(draft)
    peer = await loop.get(draft, "/totals")
    assert peer.status_code == 200 and peer.json() == fixture("get_draft_totals", "success")
    documented = await loop.get(draft, "/totals", **{"X-Sandbox-Totals-Shape": "documented"})
    body = documented.json()
    assert body["draft_return"]["id"] == draft
    assert body["draft_return"]["totals"] == {
        "amount_due": {"amount": 0, "currency": "USD"},
        "fees": {},
        "is_difference_covered": True,
    }
    bad = await loop.get(draft, "/totals", **{"X-Sandbox-Totals-Shape": "xml"})
    assert bad.status_code == 400
    switched = await loop.control("/draft-returns/settings", {"totals_shape": "documented"})
    assert switched.json()["settings"]["totals_shape"] == "documented"
    assert "draft_return" in (await loop.get(draft, "/totals")).json()


async def test_totals_shape_setting() -> None:
    app = make_app(sandbox_totals_shape="documented")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://s"
    ) as http:
        loop = Loop(http, app)
        draft = await loop.draft()
        await loop.ready_item(draft, CARGO)
        await loop.finalize(draft)
        totals = (await loop.get(draft, "/totals")).json()
        assert totals["draft_return"]["totals"]["amount_due"] == {"amount": 0, "currency": "USD"}


async def test_a_pricier_exchange_is_due_and_blocks_the_submit(loop: Loop) -> None:
    draft = await loop.draft()
    item = await loop.ready_item(draft, CARGO)
    await loop.item(draft, item, "return-type", {"return_type": "exchange"})
    await loop.item(draft, item, "exchange-item", {"variant_id": S_GREEN})
    await loop.finalize(draft)
    await loop.choose(draft, credit=None)
    totals = (await loop.get(draft, "/totals")).json()
    assert totals == {
        "data": {
            "amount_due": {"amount": 1000, "currencyCode": "USD"},
            "fees": {},
            "is_difference_covered": False,
        }
    }
    body = (await loop.get(draft)).json()
    assert "submit-draft-return" not in rels(body)
    assert body["draft_return"]["totals"]["amount_due"] == {"amount": 1000, "currency": "USD"}
    refused = await loop.post(draft, "/submit")
    assert refused.status_code == 422 and refused.json() == fixture(
        "submit_return", "not_actionable"
    )
    assert (await loop.get(draft)).json()["draft_return"]["state"] == "items-finalized"
    assert len(loop.app.state.world.returns) == 2
    # The customer pays: the difference is covered and the return can be made.
    paid = await loop.http.post(f"/_sandbox/draft-returns/{draft}/pay")
    assert paid.status_code == 200
    assert (await loop.get(draft, "/totals")).json()["data"]["is_difference_covered"] is True
    submitted = await loop.post(draft, "/submit")
    assert submitted.status_code == 200
    made = loop.app.state.world.get_return(str(submitted.json()["draft_return"]["return_id"]))
    assert made["upsell"] == "10.00" and made["outcome"] == "exchange"


async def test_the_shops_exchange_fee(loop: Loop) -> None:
    assert (
        await loop.control("/draft-returns/settings", {"exchange_fee": "8.00"})
    ).status_code == 200
    draft = await loop.draft()
    item = await loop.ready_item(draft, CARGO)
    await loop.item(draft, item, "return-type", {"return_type": "exchange"})
    await loop.item(draft, item, "exchange-item", {"variant_id": L_BLUE})
    await loop.finalize(draft)
    # An even exchange: the fee alone is due, exactly Loop's `fee_due` fixture.
    assert (await loop.get(draft, "/totals")).json() == fixture("get_draft_totals", "fee_due")
    # With a refunded item beside it the fee comes out of the refund instead.
    second = await loop.draft()
    swap = await loop.ready_item(second, CARGO)
    await loop.ready_item(second, RUNNER)
    await loop.item(second, swap, "return-type", {"return_type": "exchange"})
    await loop.item(second, swap, "exchange-item", {"variant_id": L_BLUE})
    await loop.finalize(second)
    await loop.choose(second)
    assert (await loop.get(second, "/totals")).json()["data"] == {
        "amount_due": {"amount": 0, "currencyCode": "USD"},
        "fees": {"exchange": {"amount": 800, "currencyCode": "USD"}},
        "is_difference_covered": True,
    }
    made = await loop.post(second, "/submit")
    item_made = loop.app.state.world.get_return(str(made.json()["draft_return"]["return_id"]))
    assert item_made["outcome"] == "exchange+refund"
    assert (item_made["handling_fee"], item_made["refund"], item_made["total"]) == (
        "8.00",
        "90.00",
        "90.00",
    )
    bad = await loop.control("/draft-returns/settings", {"exchange_fee": "eight"})
    assert bad.status_code == 422


# --- submit ----------------------------------------------------------------------------


async def test_submit_creates_a_return_everywhere_and_its_webhook(loop: Loop) -> None:
    receiver = Receiver()
    async with receiver.client() as hook_client:
        configure_webhooks(
            loop.app, "http://receiver.test/hooks", "whsec", client=hook_client, base_delay=0
        )
        draft = await loop.draft()
        await loop.ready_item(draft, CARGO, reason=1)
        await loop.ready_item(draft, RUNNER, reason=5)
        await loop.finalize(draft)
        await loop.choose(draft, "refund", method=1)
        submitted = await loop.post(draft, "/submit")
        await loop.app.state.webhook_tasks_drained()
    assert submitted.status_code == 200
    body = submitted.json()
    state = body["draft_return"]
    assert state["state"] == "submitted" and isinstance(state["return_id"], int)
    assert body["links"] == []
    rid = str(state["return_id"])
    listed = await loop.http.get(
        "/api/v2/returns", params={"customer_email": "ann@example.com"}, headers=LOOP
    )
    made = next(r for r in listed.json()["data"] if r["id"] == rid)
    assert made["state"] == "open" and made["outcome"] == "refund"
    assert made["order_name"] == "#1234" and made["customer"] == "ann@example.com"
    assert [
        (x["line_item_id"], x["return_reason"], x["parent_return_reason"], x["price"])
        for x in made["line_items"]
    ] == [
        (str(CARGO), "Item was too big", "Item didn't fit", "-85.00"),
        (str(RUNNER), "Arrived damaged", "Damaged or defective", "-98.00"),
    ]
    assert (made["refund"], made["total"], made["return_total"]) == ("183.00", "183.00", "183.00")
    assert made["return_method"] == "prepaid_label" and made["label_status"] == "new"
    assert made["exchanges"] == [] and made["status_page_url"].startswith("https://")
    for params in ({"return_id": rid}, {"order_name": "#1234"}, {"order_id": made["order_id"]}):
        details = await loop.http.get(
            "/api/v1/warehouse/return/details", params=params, headers=LOOP
        )
        assert details.status_code == 200 and details.json()["id"] == int(rid), params
    [event] = receiver.events()
    assert (event["topic"], event["trigger"], str(event["id"])) == ("return", "return.created", rid)
    assert event["outcome"] == "refund"
    # The returned items are no longer eligible; the terminal draft refuses everything.
    again = (await loop.create()).json()["context"]["items_not_eligible_to_return"]
    assert {"order_line_item_id": CARGO, "ineligibility_code": "already-returned"} in again
    for path in ("/submit", "/cancel", "/finalize-items"):
        assert (await loop.post(draft, path)).json() == UNAVAILABLE


async def test_submit_outcomes_credit_exchange_and_gift(loop: Loop) -> None:
    world: World = loop.app.state.world

    async def submit(
        credit: str | None, method: int, *, exchange: bool = False, **create: Any
    ) -> dict[str, Any]:
        draft = await loop.draft(**create)
        item = await loop.ready_item(draft, CARGO)
        if exchange:
            await loop.item(draft, item, "return-type", {"return_type": "exchange"})
            await loop.item(draft, item, "exchange-item", {"variant_id": M_GREEN})
        await loop.finalize(draft)
        await loop.choose(draft, credit, method)
        response = await loop.post(draft, "/submit")
        assert response.status_code == 200, response.text
        made: dict[str, Any] = world.get_return(str(response.json()["draft_return"]["return_id"]))
        # Cancel the return so the next draft may return the same item.
        made["state"] = "cancelled"
        return made

    credit = await submit("gift", 3)
    assert credit["outcome"] == "credit" and credit["refund"] == "0.00"
    assert credit["return_credit_total"] == "85.00"
    assert credit["return_method"] == "dropoff" and credit["label_status"] == "N/A"
    exchanged = await submit(None, 1, exchange=True)
    assert exchanged["outcome"] == "exchange"
    [row] = exchanged["exchanges"]
    assert (
        row["variant_id"] == str(M_GREEN) and row["type"] == "exchange" and row["price"] == "85.00"
    )
    assert exchanged["line_items"][0]["exchange_variant"] == str(M_GREEN)
    assert world.find_variant(M_GREEN)[1]["inventory"] == 0  # the last one went
    gift = await loop.create(is_gift=True)
    draft = gift.json()["draft_return"]
    assert draft["is_gift"] is True and draft["credit_type"] == "gift"
    await loop.ready_item(draft["id"], CARGO)
    await loop.finalize(draft["id"])
    refund = await loop.post(draft["id"], "/credit-type", {"credit_type": "refund"})
    assert refund.status_code == 422 and refund.json()["message"]


async def test_submit_when_no_policy_covers_the_order_any_more(loop: Loop) -> None:
    await loop.control("/draft-returns/settings", {"ttl_seconds": 3 * 86_400})
    draft = await loop.draft("#4000")  # 29.5 days old
    await loop.ready_item(draft, 4000001)
    await loop.finalize(draft)
    await loop.choose(draft)
    assert "submit-draft-return" in rels((await loop.get(draft)).json())
    await loop.control("/draft-returns/clock", {"advance_seconds": 86_400})
    refused = await loop.post(draft, "/submit")
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "returns-unavailable-for-order"
    assert (await loop.get(draft)).json()["draft_return"]["state"] == "items-finalized"
    reset = await loop.control("/draft-returns/clock", {"reset": True})
    assert reset.json()["offset_seconds"] == 0


async def test_a_failing_submit_before_or_after_the_return_is_made(loop: Loop) -> None:
    world: World = loop.app.state.world

    async def ready() -> int:
        draft = await loop.draft()
        await loop.ready_item(draft, CARGO)
        await loop.finalize(draft)
        await loop.choose(draft)
        return draft

    before = await ready()
    loop.app.state.faults.add("/submit", status=500, times=1)
    failed = await loop.post(before, "/submit")
    assert failed.status_code == 500 and failed.json() == {"message": "Server Error"}
    assert (await loop.get(before)).json()["draft_return"]["state"] == "items-finalized"
    assert len(world.returns) == 2
    # Through the control route this time: the return is made, then the answer lost.
    rule = {"path_contains": "/submit", "status": 500, "times": 1, "after": True}
    assert (await loop.control("/faults", rule)).status_code == 201
    lost = await loop.post(before, "/submit")
    assert lost.status_code == 500
    state = (await loop.get(before)).json()["draft_return"]
    assert state["state"] == "submitted" and str(state["return_id"]) in world.returns
    # The same by header, per request.
    second = await ready_other(loop)
    lost_again = await loop.post(second, "/submit", **{"X-Sandbox-Fault": "status=503; after"})
    assert lost_again.status_code == 503
    assert (await loop.get(second)).json()["draft_return"]["state"] == "submitted"
    bad = await loop.post(second, "/submit", **{"X-Sandbox-Fault": "after"})
    assert bad.status_code == 400
    assert (await loop.control("/faults", {"after": True})).status_code == 422


async def ready_other(loop: Loop) -> int:
    draft = await loop.draft()
    await loop.ready_item(draft, RUNNER)
    await loop.finalize(draft)
    await loop.choose(draft)
    return draft


# --- cancel, expiry, the beta switch, the version alias --------------------------------


async def test_cancel_before_submit(loop: Loop) -> None:
    created = await loop.draft()
    cancelled = await loop.post(created, "/cancel")
    assert cancelled.status_code == 200
    assert (
        cancelled.json()["draft_return"]["state"] == "cancelled" and cancelled.json()["links"] == []
    )
    assert (await loop.post(created, "/cancel")).json() == UNAVAILABLE
    add = await loop.post(created, "/returning-items", {"order_line_item_id": CARGO})
    assert add.status_code == 422 and add.json() == UNAVAILABLE
    finalized = await loop.draft()
    await loop.ready_item(finalized, CARGO)
    await loop.finalize(finalized)
    assert (await loop.post(finalized, "/cancel")).json()["draft_return"]["state"] == "cancelled"


async def test_drafts_expire() -> None:
    app = make_app(sandbox_draft_ttl_seconds=60)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://s"
    ) as http:
        loop = Loop(http, app)
        draft = await loop.draft()
        item = await loop.add(draft, CARGO)
        await loop.control("/draft-returns/clock", {"advance_seconds": 59})
        assert (await loop.get(draft)).json()["draft_return"]["state"] == "created"
        await loop.control("/draft-returns/clock", {"advance_seconds": 2})
        expired = (await loop.get(draft)).json()
        assert expired["draft_return"]["state"] == "expired" and expired["links"] == []
        refused = await loop.item(draft, item, "return-reason", {"reason_id": 1})
        assert refused.status_code == 422 and refused.json() == UNAVAILABLE
        assert (await loop.post(draft, "/cancel")).json() == UNAVAILABLE
        shown = (await http.get("/_sandbox/draft-returns")).json()
        assert shown["drafts"][0]["state"] == "expired" and shown["settings"]["ttl_seconds"] == 60


async def test_the_shop_without_the_beta(loop: Loop) -> None:
    draft = await loop.draft()
    off = await loop.control("/draft-returns/settings", {"enabled": False})
    assert off.json()["settings"]["enabled"] is False
    for response in (await loop.create(), await loop.get(draft), await loop.post(draft, "/cancel")):
        assert response.status_code == 403
        assert response.json()["errors"][0]["code"] == "unsupported-feature"
    await loop.control("/draft-returns/settings", {"disabled_status": 401})
    unauthorized = await loop.create()
    assert unauthorized.status_code == 401
    assert unauthorized.json() == fixture("get_return_details", "server_error")
    assert (
        await loop.control("/draft-returns/settings", {"disabled_status": 500})
    ).status_code == 422
    await loop.control("/draft-returns/settings", {"enabled": True})
    assert (await loop.get(draft)).status_code == 200


async def test_the_version_alias_serves_the_same_drafts(loop: Loop) -> None:
    created = await loop.http.post(
        "/api/2026-07/draft-returns",
        json={"order_name": "#1234", "secondary_input": "90210"},
        headers=LOOP,
    )
    assert created.status_code == 200
    body = created.json()
    assert link(body, "add-returning-item")["href"].startswith("/api/2026-07/draft-returns/")
    assert (await loop.get(body["draft_return"]["id"])).status_code == 200


async def test_draft_endpoints_need_the_token(loop: Loop) -> None:
    response = await loop.http.post(
        DRAFTS, json={"order_name": "#1234", "secondary_input": "90210"}
    )
    assert response.status_code == 401


# --- return details by return id, order id, order name ---------------------------------


async def test_return_details_lookups(loop: Loop) -> None:
    async def details(**params: Any) -> httpx.Response:
        return await loop.http.get(
            "/api/v1/warehouse/return/details",
            params=params,
            headers={**LOOP, **params.pop("headers", {})},
        )

    # #3000 has an open and a cancelled return: the order finds the newest.
    assert (await details(order_name="#3000")).json()["id"] in (25044100, 25044120)
    by_order = (await details(order_id="50265228", currency_type="presentment")).json()
    assert by_order["order_name"] == "#3000"
    both = await details(return_id="25044100", order_name="#3000")
    assert both.json()["id"] == 25044100
    mismatch = await details(return_id="25044100", order_name="#1234")
    assert mismatch.status_code == 404
    assert mismatch.json() == fixture("get_return_details", "not_found")
    as_fixture = await details(return_id="999", headers={"X-Sandbox-Not-Found-Status": "200"})
    assert as_fixture.status_code == 200 and as_fixture.json() == fixture(
        "get_return_details", "not_found"
    )
    switched = await loop.control("/details", {"not_found_status": 200})
    assert switched.json() == {"shape": "documented", "not_found_status": 200}
    assert (await details(order_name="#nope")).status_code == 200
    none = await details()
    assert none.status_code == 422 and "return_id" in none.json()["errors"]
    assert (await details(order_id="x")).json()["errors"] == {
        "order_id": ["The order id must be an integer."]
    }
    assert (await details(return_id="1", currency_type="usd")).status_code == 422
    assert (
        await details(return_id="1", headers={"X-Sandbox-Details-Shape": "xml"})
    ).status_code == 400


async def test_return_details_in_the_peer_shape(loop: Loop) -> None:
    draft = await loop.draft()
    await loop.ready_item(draft, CARGO)
    await loop.finalize(draft)
    await loop.choose(draft, "refund", method=1)
    rid = (await loop.post(draft, "/submit")).json()["draft_return"]["return_id"]
    peer = await loop.http.get(
        "/api/v1/warehouse/return/details",
        params={"return_id": rid},
        headers={**LOOP, "X-Sandbox-Details-Shape": "peer"},
    )
    body = peer.json()
    expected_keys = set(fixture("get_return_details", "success"))
    assert set(body) == expected_keys
    assert body["id"] == rid and body["customer_email"] == "ann@example.com"
    assert (body["return_total"], body["refund"], body["exchange"], body["handling_fee"]) == (
        8500,
        8500,
        0,
        0,
    )
    assert body["line_items"] == [
        {
            "id": CARGO,
            "title": "Ambush Cargo - M / Green",
            "sku": f"SKU-{M_GREEN}",
            "quantity": 1,
            "refund": 8500,
            "condition": None,
            "disposition": None,
        }
    ]


# --- the data file ---------------------------------------------------------------------


def _file(tmp_path: Path, **data: Any) -> Path:
    path = tmp_path / "world.json"
    path.write_text(json.dumps({"returns": [], **data}), encoding="utf-8")
    return path


def _data_order(**line: Any) -> dict[str, Any]:
    return {
        "name": "#5000",
        "customer_email": "bo@example.com",
        "zip": "43215",
        "created_at": iso(datetime.now(UTC) - timedelta(days=3)),
        "line_items": [
            {
                "id": 5000001,
                "title": "Tee",
                "variant_title": "M",
                "price": "12.50",
                "product_id": 9,
                "variant_id": 91,
                **line,
            }
        ],
    }


PRODUCTS = [
    {
        "id": 9,
        "title": "Tee",
        "variants": [
            {"id": 91, "title": "M", "price": "12.50", "inventory": 0},
            {"id": 92, "title": "L", "price": "14.00", "inventory": 3},
        ],
    }
]


async def test_the_data_files_draft_keys(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        shop={"currency": "USD", "exchange_fee": "1.50"},
        orders=[_data_order(tags=["final-sale"]), {**_data_order(), "name": "#5001"}],
        products=PRODUCTS,
        reasons=[{"id": 77, "name": "Too short"}],
        return_methods=[{"id": 9, "name": "Drop at store", "type": "in_store"}],
    )
    world = load_world(path)
    assert world.shop["exchange_fee"] == "1.50" and world.shop["draft_returns_enabled"] is True
    assert world.reasons == [{"id": 77, "name": "Too short", "parent": None}]
    app = make_app(world)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://s"
    ) as http:
        loop = Loop(http, app)
        body = (await loop.create("#5000", "43215")).json()
        assert (
            body["context"]["items_not_eligible_to_return"][0]["ineligibility_code"] == "final-sale"
        )
        assert body["context"]["order"]["line_items"][0]["price"] == 1250
        assert body["context"]["return_reasons"] == [{"id": 77, "name": "Too short"}]
        assert body["return_method_options"] == [
            {"id": 9, "name": "Drop at store", "type": "in_store"}
        ]
        draft = await loop.draft("#5001", "43215")
        item = await loop.ready_item(draft, 5000001, reason=77)
        options = (await loop.item(draft, item, "return-type", {"return_type": "exchange"})).json()
        catalog = options["context"]["exchange_options"][str(item)]
        assert catalog["product_options"] == [{"name": "Option 1", "values": ["M", "L"]}]
        assert [
            (v["variant_id"], v["is_available"], v.get("price"))
            for v in catalog["product_variants"]
        ] == [
            (91, False, None),
            (92, True, 1400),
        ]
        await loop.item(draft, item, "exchange-item", {"variant_id": 92})
        await loop.finalize(draft)
        totals = (await loop.get(draft, "/totals")).json()["data"]
        assert totals["amount_due"]["amount"] == 300  # 14.00 - 12.50 + 1.50
        assert totals["fees"] == {"exchange": {"amount": 150, "currencyCode": "USD"}}


def test_absent_draft_keys_give_defaults_and_empty_lists_give_none(tmp_path: Path) -> None:
    world = load_world(_file(tmp_path))
    assert world.reasons == default_reasons() and [m["type"] for m in world.return_methods] == [
        "mail",
        "dropoff",
    ]
    assert world.products == [] and world.shop["exchange_fee"] == "0.00"
    empty = load_world(
        _file(tmp_path, reasons=[], return_methods=[], shop={"draft_returns_enabled": False})
    )
    assert empty.reasons == [] and empty.return_methods == []
    assert empty.shop["draft_returns_enabled"] is False


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (
            {"orders": [_data_order(price="12.5.0")]},
            r"orders\[0\]\.line_items\[0\]\.price: not an amount",
        ),
        ({"orders": [_data_order(price=12.5)]}, r"orders\[0\]\.line_items\[0\]\.price"),
        ({"orders": [_data_order(tags="final-sale")]}, r"orders\[0\]\.line_items\[0\]\.tags"),
        (
            {
                "products": [
                    {
                        **PRODUCTS[0],
                        "variants": [{"id": 1, "title": "M", "price": "1.00", "inventory": "3"}],
                    }
                ]
            },
            r"products\[0\]\.variants\[0\]\.inventory",
        ),
        ({"products": [{"id": 1, "title": "x"}]}, r"products\[0\]\.variants: field required"),
        (
            {"products": [PRODUCTS[0], {**PRODUCTS[0], "id": 10}]},
            r"products\[1\]\.variants\[0\]\.id: duplicate variant id 91",
        ),
        ({"products": [PRODUCTS[0], PRODUCTS[0]]}, r"products\[1\]\.id: duplicate id 9"),
        ({"reasons": [{"id": "1", "name": "x"}]}, r"reasons\[0\]\.id"),
        (
            {"reasons": [{"id": 1, "name": "x"}, {"id": 1, "name": "y"}]},
            r"reasons\[1\]\.id: duplicate",
        ),
        (
            {"return_methods": [{"id": 1, "name": "x"}]},
            r"return_methods\[0\]\.type: field required",
        ),
        ({"shop": {"exchange_fee": 8}}, r"shop\.exchange_fee"),
        ({"shop": {"draft_returns_enabled": "yes"}}, r"shop\.draft_returns_enabled"),
        (
            {"shop": {"currency": "JPY"}, "orders": [_data_order()]},
            r"orders\[0\]\.line_items\[0\]\.price: '12\.50' is not an exact amount in JPY",
        ),
    ],
)
def test_the_data_files_draft_keys_are_checked_at_start_up(
    tmp_path: Path, data: dict[str, Any], where: str
) -> None:
    path = _file(tmp_path, **data)
    with pytest.raises(ConfigError, match=rf"^{path}: {where}"):
        load_world(path)


# --- the seeded world's draft personas -------------------------------------------------


@pytest.fixture(scope="module")
def seeded() -> World:
    return generate_world(customers=3)


@pytest.fixture
async def seeded_loop(seeded: World) -> AsyncIterator[Loop]:
    app = make_app(seeded)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://s"
    ) as http:
        yield Loop(http, app)


def persona(name: str) -> tuple[str, str]:
    found = next(p for p in DRAFT_PERSONAS if p.order_name == name)
    return found.order_name, found.zip


async def test_seeded_personas_walk_every_case(seeded_loop: Loop) -> None:
    loop = seeded_loop
    refund = (await loop.create(*persona("#7101"))).json()["context"]
    assert [i["order_line_item_id"] for i in refund["items_eligible_to_return"]] == [
        7101001,
        7101002,
    ]
    final = (await loop.create(*persona("#7104"))).json()["context"]
    assert final["items_not_eligible_to_return"] == [
        {"order_line_item_id": 7104001, "ineligibility_code": "final-sale"}
    ]
    assert final["items_eligible_to_return"] == [{"order_line_item_id": 7104002}]
    window = (await loop.create(*persona("#7105"))).json()["context"]
    assert window["items_eligible_to_return"] == []
    assert {i["ineligibility_code"] for i in window["items_not_eligible_to_return"]} == {
        "outside-return-window"
    }
    # #7102: the shirt's catalog has White / L in stock and Navy / M sold out; the
    # sweater's Charcoal / M costs 10.00 more.
    draft = await loop.draft(*persona("#7102"))
    shirt = await loop.ready_item(draft, 7102001)
    sweater = await loop.ready_item(draft, 7102002)
    await loop.item(draft, shirt, "return-type", {"return_type": "exchange"})
    typed = await loop.item(draft, sweater, "return-type", {"return_type": "exchange"})
    options = typed.json()["context"]["exchange_options"]
    shirts = {v["variant_title"]: v for v in options[str(shirt)]["product_variants"]}
    assert shirts["White / L"]["is_available"] and not shirts["Navy / M"]["is_available"]
    sweaters = {v["variant_title"]: v for v in options[str(sweater)]["product_variants"]}
    assert not sweaters["Oat / S"]["is_available"] and sweaters["Charcoal / M"]["price"] == 9900
    # #7103: the Black / L jacket leaves 15.00 due.
    upgrade = await loop.draft(*persona("#7103"))
    jacket = await loop.ready_item(upgrade, 7103001)
    variants = (await loop.item(upgrade, jacket, "return-type", {"return_type": "exchange"})).json()
    black = next(
        v
        for v in variants["context"]["exchange_options"][str(jacket)]["product_variants"]
        if v["variant_title"] == "Black / L"
    )
    await loop.item(upgrade, jacket, "exchange-item", {"variant_id": black["variant_id"]})
    await loop.finalize(upgrade)
    await loop.choose(upgrade, credit=None)
    assert (await loop.get(upgrade, "/totals")).json()["data"]["amount_due"]["amount"] == 1500
    assert (await loop.post(upgrade, "/submit")).json() == fixture(
        "submit_return", "not_actionable"
    )


def test_seeded_orders_hold_line_items(seeded: World) -> None:
    big = generate_world(customers=40)
    orders = big.orders
    assert all(len(o["line_items"]) >= len(o["shipments"]) for o in orders)
    tags = [t for o in orders for i in o["line_items"] for t in i["tags"]]
    assert "final-sale" in tags
    # A return's items are among its order's items, by Loop's line item id.
    for item in big.returns.values():
        order = big.find_order(item["order_name"])
        held = {i["id"] for i in order["line_items"]}
        assert {int(x["line_item_id"]) for x in item["line_items"]} <= held
    products = {p["id"]: p for p in seeded.products}
    stock = [v["inventory"] for p in products.values() for v in p["variants"]]
    assert 0 in stock and min(x for x in stock if x) > 0
    assert seeded.return_methods[1] == {"id": 3, "name": "Happy Returns", "type": "dropoff"}
