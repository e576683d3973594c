"""LoopDraftsClient: the wire of each Draft Returns endpoint, its errors, ids and money."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import respx

from loopdesk.domain import drafts as d
from loopdesk.errors import (
    DraftRejected,
    InvalidInput,
    LoopAuthError,
    LoopError,
    LoopNotFound,
    LoopRateLimited,
    LoopRejected,
    LoopUnavailable,
    LoopValidationError,
)
from loopdesk.loop import LoopReturnsClient
from loopdesk.loop.drafts import LoopDraftsClient
from loopdesk.loop.http import InvalidLoopBody
from loopdesk.runtime import Upstream
from loopdesk.settings import LOOP_BASE_URL, Settings

TOKEN = "loop-drafts-token-abc"
DRAFTS = LOOP_BASE_URL + "/api/v1/draft-returns"
DETAILS = LOOP_BASE_URL + "/api/v1/warehouse/return/details"
DRAFT_BODY = {"draft_return": {"id": 575814, "state": "created"}, "links": []}
TOTALS_BODY = {"data": {"amount_due": {"amount": 0, "currencyCode": "USD"}}}
DETAILS_BODY = {"id": 25044766000, "state": "open", "currency": "USD"}

pytestmark = pytest.mark.usefixtures("instant_retries")


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


def _client(token: str = TOKEN) -> LoopDraftsClient:
    return LoopDraftsClient(
        base_url=LOOP_BASE_URL, token=token, settings=Settings(loop_api_token=token)
    )


@pytest.fixture
async def client() -> AsyncIterator[LoopDraftsClient]:
    async with _client() as c:
        yield c


Call = Callable[[LoopDraftsClient], Awaitable[Any]]

# (call, method, URL, JSON body the reference documents or None, answer)
ENDPOINTS: list[tuple[str, Call, str, str, Any, Any]] = [
    (
        "create",
        lambda c: c.create("#1234", "90210"),
        "POST",
        DRAFTS,
        {"order_name": "#1234", "secondary_input": "90210", "is_gift": False},
        DRAFT_BODY,
    ),
    (
        "create_gift",
        lambda c: c.create("#1234", "jane@example.com", is_gift=True),
        "POST",
        DRAFTS,
        {"order_name": "#1234", "secondary_input": "jane@example.com", "is_gift": True},
        DRAFT_BODY,
    ),
    (
        "add_returning_item",
        lambda c: c.add_returning_item("575814", "401103686"),
        "POST",
        DRAFTS + "/575814/returning-items",
        {"order_line_item_id": 401103686},
        DRAFT_BODY,
    ),
    (
        "remove_returning_item",
        lambda c: c.remove_returning_item(575814, 757122),
        "DELETE",
        DRAFTS + "/575814/returning-items/757122",
        None,
        DRAFT_BODY,
    ),
    (
        "set_return_reason",
        lambda c: c.set_return_reason(55501, "771", 5),
        "POST",
        DRAFTS + "/55501/returning-items/771/return-reason",
        {"reason_id": 5},
        DRAFT_BODY,
    ),
    (
        "set_return_type",
        lambda c: c.set_return_type(55501, 771, "exchange"),
        "POST",
        DRAFTS + "/55501/returning-items/771/return-type",
        {"return_type": "exchange"},
        DRAFT_BODY,
    ),
    (
        "set_credit_type",
        lambda c: c.set_credit_type(55501, "gift"),
        "POST",
        DRAFTS + "/55501/credit-type",
        {"credit_type": "gift"},
        DRAFT_BODY,
    ),
    (
        "add_exchange_item",
        lambda c: c.add_exchange_item("55501", "771", "48087696801943"),
        "POST",
        DRAFTS + "/55501/returning-items/771/exchange-item",
        {"variant_id": 48087696801943},
        DRAFT_BODY,
    ),
    (
        "finalize_items",
        lambda c: c.finalize_items(55501),
        "POST",
        DRAFTS + "/55501/finalize-items",
        None,
        DRAFT_BODY,
    ),
    (
        "select_return_method",
        lambda c: c.select_return_method(55501, "3"),
        "POST",
        DRAFTS + "/55501/select-return-method",
        {"return_method_id": 3},
        DRAFT_BODY,
    ),
    (
        "submit",
        lambda c: c.submit(55501),
        "POST",
        DRAFTS + "/55501/submit",
        None,
        DRAFT_BODY,
    ),
    ("get", lambda c: c.get("900123456"), "GET", DRAFTS + "/900123456", None, DRAFT_BODY),
    ("cancel", lambda c: c.cancel(55501), "POST", DRAFTS + "/55501/cancel", None, DRAFT_BODY),
    ("totals", lambda c: c.totals(55501), "GET", DRAFTS + "/55501/totals", None, TOTALS_BODY),
    (
        "return_details",
        lambda c: c.return_details(return_id=660987),
        "GET",
        DETAILS + "?return_id=660987",
        None,
        DETAILS_BODY,
    ),
]


def _canonical(value: Any) -> str:
    """JSON text that tells `5` from `5.0` and from `"5"`."""
    return json.dumps(value, sort_keys=True)


@pytest.mark.parametrize(
    ("call", "method", "url", "body", "answer"),
    [e[1:] for e in ENDPOINTS],
    ids=[e[0] for e in ENDPOINTS],
)
async def test_each_endpoint_sends_the_documented_request(
    client: LoopDraftsClient,
    mock: respx.MockRouter,
    call: Call,
    method: str,
    url: str,
    body: Any,
    answer: Any,
) -> None:
    route = mock.request(method, url).respond(json=answer)
    await call(client)
    request = route.calls.last.request
    assert route.call_count == 1
    assert str(request.url) == url
    assert request.headers["X-Authorization"] == TOKEN
    if body is None:
        assert request.content == b""
    else:
        assert request.headers["Content-Type"] == "application/json"
        assert _canonical(json.loads(request.content)) == _canonical(body)


def test_every_call_with_a_rel_is_a_client_method() -> None:
    named = {e[0] for e in ENDPOINTS}
    for call in d.CALL_RELS:
        assert callable(getattr(LoopDraftsClient, call)), call
        assert call in named


# Ids ---------------------------------------------------------------------------------


async def test_ids_as_text_or_numbers_send_the_same_request(
    client: LoopDraftsClient, mock: respx.MockRouter
) -> None:
    route = mock.post(DRAFTS + "/575814/returning-items").respond(json=DRAFT_BODY)
    await client.add_returning_item("575814", "401103686")
    await client.add_returning_item(575814, 401103686)
    await client.add_returning_item(" 575814 ", "401103686")
    contents = {call.request.content for call in route.calls}
    assert contents == {b'{"order_line_item_id":401103686}'}  # a bare JSON number


async def test_ids_beyond_two_to_the_53_stay_exact(
    client: LoopDraftsClient, mock: respx.MockRouter
) -> None:
    big = 2**63 - 1  # a float would read it as 9223372036854775808
    answer = {
        "draft_return": {
            "id": big,
            "state": "created",
            "returning_items": [{"id": 2**53 + 1, "order_line_item_id": big}],
        }
    }
    route = mock.post(f"{DRAFTS}/{big}/returning-items").respond(json=answer)
    draft = await client.add_returning_item(str(big), big)
    assert route.calls.last.request.content == b'{"order_line_item_id":9223372036854775807}'
    assert draft.id == "9223372036854775807"
    assert draft.returning_items[0].id == "9007199254740993"
    assert d.add_return_item_output(draft, str(big)) == {
        "returningItemId": "9007199254740993",
        "orderLineItemId": "9223372036854775807",
    }


@pytest.mark.parametrize(
    "wire_id", ["900123456", 900123456, 900123456.0], ids=["text", "number", "whole float"]
)
async def test_ids_from_loop_as_text_or_numbers(
    client: LoopDraftsClient, mock: respx.MockRouter, wire_id: Any
) -> None:
    mock.get(DRAFTS + "/1").respond(json={"draft_return": {"id": wire_id}})
    assert (await client.get(1)).id == "900123456"


@pytest.mark.parametrize(
    "wire_id",
    [2**63, 2.0**60, 1.5, "12a", "-5", True, [1]],
    ids=["beyond 64 bits", "inexact float", "fraction", "not digits", "negative", "bool", "list"],
)
async def test_ids_from_loop_that_are_not_ids_are_refused(
    client: LoopDraftsClient, mock: respx.MockRouter, wire_id: Any
) -> None:
    mock.get(DRAFTS + "/1").respond(json={"draft_return": {"id": wire_id}})
    with pytest.raises(InvalidLoopBody) as info:
        await client.get(1)
    assert "draft_return.id" in info.value.message
    assert info.value.details["endpoint"] == "drafts.get"


BAD_INPUTS: list[tuple[str, Call]] = [
    ("bool id", lambda c: c.get(True)),
    ("zero id", lambda c: c.get(0)),
    ("negative id", lambda c: c.get(-1)),
    ("id with a path", lambda c: c.get("1/../2")),
    ("float id", lambda c: c.get(1.0)),  # type: ignore[arg-type]
    ("id beyond 64 bits", lambda c: c.get(2**63)),
    ("empty id", lambda c: c.finalize_items("")),
    ("bad item id", lambda c: c.add_returning_item(1, "abc")),
    ("bad reason id", lambda c: c.set_return_reason(1, 2, "five")),
    ("unknown return type", lambda c: c.set_return_type(1, 2, "store_credit")),
    ("unknown credit type", lambda c: c.set_credit_type(1, "cash")),
    ("blank order name", lambda c: c.create("  ", "90210")),
    ("order name not text", lambda c: c.create(1234, "90210")),  # type: ignore[arg-type]
    ("gift not a flag", lambda c: c.create("#1", "90210", is_gift="yes")),  # type: ignore[arg-type]
    ("no lookup id", lambda c: c.return_details()),
    ("blank lookups", lambda c: c.return_details(return_id="", order_name=" ")),
    ("bad currency type", lambda c: c.return_details(return_id=1, currency_type="usd")),
    ("bad order id", lambda c: c.return_details(order_id="#1234")),
]


@pytest.mark.parametrize("call", [b[1] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS])
async def test_bad_inputs_are_refused_without_a_request(
    client: LoopDraftsClient, mock: respx.MockRouter, call: Call
) -> None:
    route = mock.route().respond(json=DRAFT_BODY)
    with pytest.raises(InvalidInput) as info:
        await call(client)
    assert info.value.message
    assert info.value.to_body()["error"]["code"] == "invalid_input"
    assert route.call_count == 0


async def test_a_lookup_without_an_id_says_what_it_needs(client: LoopDraftsClient) -> None:
    with pytest.raises(InvalidInput) as info:
        await client.return_details(currency_type="shop")
    assert info.value.message == (
        "a return lookup requires at least one of: returnId, orderId, or orderName"
    )


# Errors --------------------------------------------------------------------------------

NOT_ACTIONABLE = {"errors": [{"code": "draft-return-not-actionable", "message": ""}]}

REJECTIONS: list[tuple[str, Any, list[dict[str, Any]]]] = [
    (
        "code kept, empty message reads the code",
        NOT_ACTIONABLE,
        [{"code": "draft-return-not-actionable", "message": "draft-return-not-actionable"}],
    ),
    (
        "every element, code None when absent",
        {"errors": [{"message": "a"}, {"code": "x-y", "message": "b"}, {}]},
        [
            {"code": None, "message": "a"},
            {"code": "x-y", "message": "b"},
            {"code": None, "message": "the request was rejected by Loop"},
        ],
    ),
    ("text elements", {"errors": ["bad item"]}, [{"code": None, "message": "bad item"}]),
    ("body message", {"message": "invalid reason_id"}, [{"message": "invalid reason_id"}]),
    ("error.message", {"error": {"message": "nope"}}, [{"message": "nope"}]),
    ("empty errors array", {"errors": [], "message": "m"}, [{"message": "m"}]),
    ("nothing to say", {}, [{"message": "the request was rejected by Loop"}]),
    # Laravel's field map is no `errors` array: the body's `message` is what is said.
    (
        "Laravel validation",
        {"message": "The reason id field is required.", "errors": {"reason_id": ["required"]}},
        [{"message": "The reason id field is required."}],
    ),
]


@pytest.mark.parametrize(
    ("body", "errors"), [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS]
)
async def test_422_is_a_draft_rejection_with_the_peers_entries(
    client: LoopDraftsClient, mock: respx.MockRouter, body: Any, errors: list[dict[str, Any]]
) -> None:
    mock.post(DRAFTS + "/55501/submit").respond(422, json=body)
    with pytest.raises(DraftRejected) as info:
        await client.submit(55501)
    error = info.value
    assert isinstance(error, LoopValidationError)
    assert error.errors == errors
    assert error.message == errors[0]["message"]
    assert error.http_status == 422 and error.code == "loop_draft_rejected"
    assert error.details["upstreamMessage"] == errors[0]["message"]
    assert error.to_body()["error"]["details"]["errors"] == errors
    assert d.error_output(error) == {"errors": errors}


FAILURES: list[tuple[str, int, Any, type[LoopError], str]] = [
    (
        "401 names the scopes",
        401,
        {"error": {"code": "401", "http_code": "GEN-UNAUTHORIZED", "message": "Unauthorized."}},
        LoopAuthError,
        "unauthorized: the Loop API token is missing a required scope "
        "(Draft Returns read+write, or Returns read)",
    ),
    (
        "403",
        403,
        {"message": "Forbidden."},
        LoopAuthError,
        "unable to execute action: 'Forbidden.'",
    ),
    (
        "404",
        404,
        {"message": "draft return not found"},
        LoopNotFound,
        "unable to execute action: 'draft return not found'",
    ),
    (
        "409",
        409,
        {"message": "items already finalized"},
        LoopRejected,
        "unable to execute action: 'items already finalized'",
    ),
    (
        "400 with a text element",
        400,
        {"errors": ["order-not-found"]},
        LoopRejected,
        "unable to execute action: 'order-not-found'",
    ),
    (
        "500 reads the element's message, not the element",
        500,
        {"errors": [{"code": "action-validation-failed", "message": "Action is not available"}]},
        LoopUnavailable,
        "unable to execute action: 'Action is not available'",
    ),
    (
        "500 with only a code",
        500,
        {"errors": [{"code": "draft-return-not-actionable", "message": ""}]},
        LoopUnavailable,
        "unable to execute action: 'draft-return-not-actionable'",
    ),
    (
        "502 without a body",
        502,
        None,
        LoopUnavailable,
        "unable to execute action: 'unexpected error from Loop'",
    ),
]


@pytest.mark.parametrize(
    ("status", "body", "kind", "message"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES]
)
async def test_other_statuses_are_typed_errors_in_the_peers_words(
    client: LoopDraftsClient,
    mock: respx.MockRouter,
    status: int,
    body: Any,
    kind: type[LoopError],
    message: str,
) -> None:
    answer = httpx.Response(status, json=body) if body is not None else httpx.Response(status)
    route = mock.post(DRAFTS + "/55501/finalize-items").mock(return_value=answer)
    with pytest.raises(LoopError) as info:
        await client.finalize_items(55501)
    error = info.value
    assert type(error) is kind
    assert error.message == message
    assert error.status == status and error.details["upstreamStatus"] == status
    assert error.details["endpoint"] == "drafts.finalize"
    assert error.details["upstreamMessage"]  # Loop's own words, for the peer's text
    assert d.error_output(error) == message
    assert route.call_count == 1  # a write is never repeated on a status
    if status >= 500:
        assert error.details["outcomeUnknown"] is True  # Loop may have applied it


async def test_401_keeps_loops_words_beside_the_scope_message(
    client: LoopDraftsClient, mock: respx.MockRouter
) -> None:
    body = {"error": {"code": "401", "http_code": "GEN-UNAUTHORIZED", "message": "Unauthorized."}}
    mock.get(DRAFTS + "/1/totals").respond(401, json=body)
    with pytest.raises(LoopAuthError) as info:
        await client.totals(1)
    assert info.value.details["upstreamMessage"] == "Unauthorized."
    assert "Draft Returns" in info.value.message and "Returns read" in info.value.message


async def test_reads_are_retried_on_5xx_then_reported(
    client: LoopDraftsClient, mock: respx.MockRouter
) -> None:
    route = mock.get(DRAFTS + "/1").respond(503, json={"message": "Service Unavailable"})
    with pytest.raises(LoopUnavailable) as info:
        await client.get(1)
    assert route.call_count == 3  # instant_retries: 3 attempts
    assert info.value.message == "unable to execute action: 'Service Unavailable'"
    assert "outcomeUnknown" not in info.value.details


async def test_a_read_recovers_after_a_5xx(
    client: LoopDraftsClient, mock: respx.MockRouter
) -> None:
    mock.get(DRAFTS + "/1").mock(
        side_effect=[httpx.Response(500), httpx.Response(200, json=DRAFT_BODY)]
    )
    assert (await client.get(1)).id == "575814"


async def test_a_timeout_is_unavailable_and_the_write_may_have_applied(
    client: LoopDraftsClient, mock: respx.MockRouter
) -> None:
    route = mock.post(DRAFTS + "/1/submit").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(LoopUnavailable) as info:
        await client.submit(1)
    assert route.call_count == 1
    assert info.value.message == "unable to execute action: 'Loop Returns did not answer in time'"
    assert info.value.details["upstreamMessage"] == "Loop Returns did not answer in time"
    assert info.value.details["outcomeUnknown"] is True


async def test_429_beyond_patience_is_rate_limited(mock: respx.MockRouter) -> None:
    route = mock.get(DRAFTS + "/1").respond(
        429, json={"message": "Too Many Attempts."}, headers={"Retry-After": "3600"}
    )
    async with _client("drafts-429-token") as client:  # its own key: the pause stays here
        with pytest.raises(LoopRateLimited) as info:
            await client.get(1)
    assert route.call_count == 1
    assert info.value.retry_after == 3600
    assert info.value.message == "unable to execute action: 'Too Many Attempts.'"


async def test_the_token_never_shows_in_a_message(
    client: LoopDraftsClient, mock: respx.MockRouter
) -> None:
    mock.post(DRAFTS + "/1/cancel").respond(409, json={"message": f"bad key {TOKEN}"})
    mock.post(DRAFTS + "/1/submit").respond(422, json={"errors": [{"message": f"key {TOKEN}"}]})
    with pytest.raises(LoopRejected) as rejected:
        await client.cancel(1)
    with pytest.raises(DraftRejected) as invalid:
        await client.submit(1)
    for error in (rejected.value, invalid.value):
        assert TOKEN not in json.dumps(error.to_body())
        assert "[redacted]" in error.message


async def test_a_2xx_that_is_not_a_draft_is_an_invalid_body(
    client: LoopDraftsClient, mock: respx.MockRouter
) -> None:
    mock.get(DRAFTS + "/1").respond(json={"data": []})
    with pytest.raises(InvalidLoopBody) as info:
        await client.get(1)
    assert info.value.message == "Loop Returns: draft body: no `draft_return` object"
    assert info.value.status == 200


# Totals and money ---------------------------------------------------------------------

USD_800 = d.Money(800, "USD")


@pytest.mark.parametrize(
    ("body", "totals"),
    [
        (
            {
                "data": {
                    "amount_due": {"amount": 800, "currencyCode": "USD"},
                    "fees": {"exchange": {"amount": 800, "currencyCode": "USD"}},
                    "is_difference_covered": False,
                }
            },
            d.DraftTotals(USD_800, USD_800, False),
        ),
        (
            {"totals": {"amount_due": {"amount": 800, "currency": "USD"}}},
            d.DraftTotals(USD_800, None, False),
        ),
        (
            {
                "draft_return": {
                    "id": 1,
                    "totals": {"amount_due": {"amount": 800, "currency": "USD"}},
                }
            },
            d.DraftTotals(USD_800, None, False),
        ),
        (
            {"data": {"amount_due": {"amount": 800.0, "currencyCode": "USD"}, "fees": []}},
            d.DraftTotals(USD_800, None, False),
        ),
        (
            {"data": {"amount_due": None, "is_difference_covered": True}},
            d.DraftTotals(None, None, True),
        ),
    ],
    ids=[
        "peer data shape",
        "Loop's totals",
        "inside draft_return",
        "whole float, PHP []",
        "nothing due",
    ],
)
async def test_totals_in_each_documented_shape(
    client: LoopDraftsClient, mock: respx.MockRouter, body: Any, totals: d.DraftTotals
) -> None:
    mock.get(DRAFTS + "/1/totals").respond(json=body)
    got = await client.totals(1)
    assert got == totals
    if got.amount_due is not None:
        assert type(got.amount_due.amount) is int


@pytest.mark.parametrize(
    ("amount", "why"),
    [
        ("8.00", "the text '8.00'"),
        ("800", "the text '800'"),
        (8.5, "8.5"),
        (True, "a boolean"),
        (2**63, "64-bit"),
        (None, "`amount` is missing"),
    ],
)
async def test_amounts_that_are_not_minor_unit_integers_are_refused(
    client: LoopDraftsClient, mock: respx.MockRouter, amount: Any, why: str
) -> None:
    body = {"data": {"amount_due": {"amount": amount, "currencyCode": "USD"}}}
    mock.get(DRAFTS + "/1/totals").respond(json=body)
    with pytest.raises(InvalidLoopBody) as info:
        await client.totals(1)
    assert "data.amount_due" in info.value.message and why in info.value.message


async def test_totals_without_totals_are_refused(
    client: LoopDraftsClient, mock: respx.MockRouter
) -> None:
    mock.get(DRAFTS + "/1/totals").respond(json={"links": []})
    with pytest.raises(InvalidLoopBody, match="no `data` or `totals` object"):
        await client.totals(1)


async def test_prices_stay_integers(client: LoopDraftsClient, mock: respx.MockRouter) -> None:
    body = {
        "draft_return": {"id": 1, "state": "created"},
        "context": {
            "order": {
                "line_items": [{"id": 1, "price": 9007199254740993}, {"id": 2, "price": 9800.0}]
            },
            "exchange_options": {"5": {"product_variants": [{"variant_id": 7, "price": 8500}]}},
        },
    }
    mock.post(DRAFTS).respond(json=body)
    draft = await client.create("#1", "90210")
    assert draft.order is not None
    prices = [item.price for item in draft.order.line_items]
    prices.append(draft.exchange_options[0].variants[0].price)
    assert prices == [9007199254740993, 9800, 8500]
    assert all(type(p) is int for p in prices)


# Links ---------------------------------------------------------------------------------

HAL_BODY = {
    "draft_return": {"id": 123, "state": "created"},
    "_links": {
        "self": {"href": "https://api.loopreturns.com/api/2026-10/draft-returns/123"},
        "add-returning-item": {
            "href": "https://api.loopreturns.com/api/2026-10/draft-returns/123/returning-items"
        },
        "finalize-items": {
            "href": "https://api.loopreturns.com/api/2026-10/draft-returns/123/finalize-items"
        },
    },
    "_templates": {
        "add-returning-item": {
            "method": "post",
            "title": "Add a line item to the return",
            "contentType": "application/json",
            "properties": [{"name": "order_line_item_id", "required": True, "type": "number"}],
        },
        "finalize-items": {"method": "POST"},
        "submit-draft-return": {
            "method": "POST",
            "target": "https://api.loopreturns.com/api/2026-10/draft-returns/123/submit",
        },
    },
}


async def test_hal_forms_links_read_as_the_links_array(
    client: LoopDraftsClient, mock: respx.MockRouter
) -> None:
    mock.get(DRAFTS + "/123").respond(json=HAL_BODY)
    draft = await client.get(123)
    base = "https://api.loopreturns.com/api/2026-10/draft-returns/123"
    assert draft.links == (
        d.Link(
            rel="add-returning-item",
            href=base + "/returning-items",
            method="POST",
            description="Add a line item to the return",
            fields=[{"name": "order_line_item_id", "required": True, "type": "number"}],
        ),
        d.Link(rel="finalize-items", href=base + "/finalize-items", method="POST"),
        d.Link(rel="submit-draft-return", href=base + "/submit", method="POST"),
    )
    assert d.next_steps(draft) == ("add-returning-item", "finalize-items", "submit-draft-return")
    assert d.allows(draft, "submit-draft-return") and not d.allows(draft, "self")


async def test_links_array_with_loops_metadata(
    client: LoopDraftsClient, mock: respx.MockRouter
) -> None:
    fields = [{"name": "reason_id", "type": "integer", "required": True}]
    body = {
        "draft_return": {"id": 9, "state": "created"},
        "links": [
            {
                "rel": "set-return-reason",
                "href": "/api/v1/draft-returns/9/returning-items/4/return-reason",
                "method": "POST",
                "is_required": True,
                "description": "Set the reason",
                "fields": fields,
            },
            {"rel": "totals", "href": "/api/v1/draft-returns/9/totals"},
        ],
    }
    mock.get(DRAFTS + "/9").respond(json=body)
    draft = await client.get(9)
    reason, totals = draft.links
    assert (reason.is_required, reason.description, reason.fields) == (
        True,
        "Set the reason",
        fields,
    )
    assert (totals.method, totals.is_required) == ("GET", False)


# Return details --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "query"),
    [
        ({"return_id": "25044766"}, "return_id=25044766"),
        ({"order_name": "#1234 A/B"}, "order_name=%231234%20A%2FB"),
        (
            {"currency_type": "presentment", "order_name": "#1", "order_id": 7, "return_id": 5},
            "return_id=5&order_id=7&order_name=%231&currency_type=presentment",
        ),
        ({"order_id": "98766312", "currency_type": "shop"}, "order_id=98766312&currency_type=shop"),
    ],
)
async def test_return_details_parameters_only_when_given_in_order(
    client: LoopDraftsClient, mock: respx.MockRouter, kwargs: dict[str, Any], query: str
) -> None:
    route = mock.get(url__startswith=DETAILS).respond(json=DETAILS_BODY)
    details = await client.return_details(**kwargs)
    assert str(route.calls.last.request.url) == f"{DETAILS}?{query}"
    assert details.id == "25044766000"


async def test_return_details_without_an_id_found_nothing(
    client: LoopDraftsClient, mock: respx.MockRouter
) -> None:
    mock.get(url__startswith=DETAILS).respond(json={"message": "No return found with this ID"})
    with pytest.raises(LoopNotFound) as info:
        await client.return_details(return_id=999)
    assert info.value.message == "no return found: No return found with this ID"
    assert info.value.details["upstreamMessage"] == "No return found with this ID"
    assert d.error_output(info.value) == "no return found: No return found with this ID"


async def test_return_details_in_loops_documented_shape(
    client: LoopDraftsClient, mock: respx.MockRouter
) -> None:
    # Loop's docs: money as decimal text in major units, `customer`, `line_item_id`.
    body = {
        "id": 37603915,
        "currency": "USD",
        "customer": "jane@example.com",
        "refund": "78.00",
        "return_total": "82.29",
        "line_items": [{"line_item_id": 293482039, "refund": "78.00"}],
    }
    mock.get(url__startswith=DETAILS).respond(json=body)
    details = await client.return_details(return_id=37603915)
    assert (details.refund, details.return_total, details.handling_fee) == (7800, 8229, 0)
    assert details.customer_email == "jane@example.com"
    assert details.line_items[0].id == "293482039"
    assert details.line_items[0].refund_amount == 7800


async def test_return_details_text_amounts_that_split_a_minor_unit_are_refused(
    client: LoopDraftsClient, mock: respx.MockRouter
) -> None:
    mock.get(url__startswith=DETAILS).respond(json={"id": 1, "currency": "JPY", "refund": "78.5"})
    with pytest.raises(InvalidLoopBody, match="not a whole number of minor units of JPY"):
        await client.return_details(return_id=1)


async def test_the_returns_clients_details_call_is_unchanged(mock: respx.MockRouter) -> None:
    route = mock.get(url__startswith=DETAILS).respond(json=DETAILS_BODY)
    async with LoopReturnsClient(
        base_url=LOOP_BASE_URL, token=TOKEN, settings=Settings(loop_api_token=TOKEN)
    ) as returns:
        assert await returns.return_details("25044766") == DETAILS_BODY
    assert str(route.calls.last.request.url) == f"{DETAILS}?return_id=25044766"


# One HTTP path -----------------------------------------------------------------------------


async def test_over_shares_the_returns_clients_http_path(mock: respx.MockRouter) -> None:
    mock.get(DRAFTS + "/1").respond(json=DRAFT_BODY)
    route = mock.get(url__startswith=DETAILS).respond(json=DETAILS_BODY)
    async with LoopReturnsClient(
        base_url=LOOP_BASE_URL, token=TOKEN, settings=Settings(loop_api_token=TOKEN)
    ) as returns:
        drafts = LoopDraftsClient.over(returns)
        assert drafts.stats is returns.stats
        await drafts.get(1)
        await drafts.aclose()  # leaves the returns client open
        await returns.return_details("1")
    assert route.call_count == 1
    assert route.calls.last.request.headers["X-Authorization"] == TOKEN


async def test_upstream_builds_the_drafts_client_on_the_returns_client() -> None:
    upstream = Upstream.from_settings(Settings(loop_api_token="upstream-drafts-token"))
    try:
        assert upstream.drafts is upstream.drafts
        assert upstream.drafts.stats is upstream.returns.stats
    finally:
        await upstream.aclose()
