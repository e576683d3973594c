"""loopdesk.domain.drafts: reading Loop's draft bodies, the next legal steps, the peer's outputs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loopdesk.domain import drafts as d
from loopdesk.errors import (
    DraftRejected,
    DraftStepNotAllowed,
    InvalidInput,
    InvalidUpstreamData,
    LoopAuthError,
    LoopRejected,
    LoopValidationError,
)


def draft(**parts: Any) -> d.Draft:
    """A draft body with `draft_return` fields from `parts` and the rest at the top level."""
    top = {k: parts.pop(k) for k in ("links", "context", "returning_items") if k in parts}
    return d.parse_draft({"draft_return": {"id": 1, **parts}, **top})


# Reading a draft -----------------------------------------------------------------------


def test_the_exchange_catalog_is_a_list_by_returning_item_id() -> None:
    variant = {"variant_id": 3, "options": {"Size": "M", "Color": "Blue", "Fit": "Slim"}}
    catalog = {
        "100": {"product_variants": [variant]},
        "9": {"product_options": [{"name": "Size", "values": ["S", "M"]}]},
        "10": {},
    }
    parsed = draft(context={"exchange_options": catalog})
    assert [e.returning_item_id for e in parsed.exchange_options] == ["9", "10", "100"]
    assert parsed.exchange_options[0].product_options == (d.ProductOption("Size", ("S", "M")),)
    (only,) = parsed.exchange_options[2].variants
    assert [o.name for o in only.options] == ["Color", "Fit", "Size"]
    assert (only.price, only.is_available, only.product_type) == (None, False, None)


@pytest.mark.parametrize("empty", [None, {}, []], ids=["absent", "object", "PHP array"])
def test_an_empty_catalog_reads_empty(empty: Any) -> None:
    assert draft(context={"exchange_options": empty}).exchange_options == ()


def test_a_catalog_keyed_by_something_else_is_refused() -> None:
    with pytest.raises(InvalidUpstreamData, match=r"context\.exchange_options\.abc"):
        draft(context={"exchange_options": {"abc": {}}})


def test_a_partial_failure_keeps_loops_errors() -> None:
    body = {"draft_return": {"id": 1}, "errors": [{"code": "order-not-found", "message": ""}]}
    assert d.parse_draft(body).errors == (
        {"code": "order-not-found", "message": "order-not-found"},
    )


def test_returning_items_also_come_from_the_top_level() -> None:
    parsed = draft(returning_items=[{"id": 5, "order_line_item_id": 401103686}])
    assert parsed.returning_items == (d.ReturningItem("5", "401103686", None),)


def test_a_returning_item_without_id_is_refused() -> None:
    with pytest.raises(InvalidUpstreamData, match=r"returning_items\[0\]: `id` is missing"):
        draft(returning_items=[{"order_line_item_id": 1}])


def test_the_reasons_and_each_items_reason_are_read() -> None:
    body = {
        "draft_return": {
            "id": 9,
            "returning_items": [{"id": 5, "order_line_item_id": 7, "reason_id": 3}, {"id": 6}],
        },
        "context": {
            "order": {"id": 1, "name": "#7101", "line_items": []},
            "return_reasons": [{"id": 1, "name": "Item was too big"}, {"id": "5"}],
        },
    }
    parsed = d.parse_draft(body)
    assert parsed.reasons == (d.Reason("1", "Item was too big"), d.Reason("5", None))
    assert [i.reason_id for i in parsed.returning_items] == ["3", None]
    assert parsed.order is not None and parsed.order.name == "#7101"
    # Loop's body is kept for the store, but is not part of the value.
    assert parsed.body == body and parsed == d.parse_draft({**body, "extra": 1})
    assert "body=" not in repr(parsed)


@pytest.mark.parametrize(
    ("reasons", "match"),
    [
        ([{"name": "no id"}], r"return_reasons\[0\]: `id` is missing"),
        ({"1": "x"}, "context.return_reasons: expected a list"),
        ([{"id": 1.5}], r"return_reasons\[0\].id"),
    ],
)
def test_reasons_of_another_shape_are_refused(reasons: Any, match: str) -> None:
    with pytest.raises(InvalidUpstreamData, match=match):
        d.parse_draft({"draft_return": {"id": 1}, "context": {"return_reasons": reasons}})


# Next legal steps -------------------------------------------------------------------------

LINKS = [
    {
        "rel": "set-return-reason",
        "href": "/api/v1/draft-returns/1/returning-items/11/return-reason",
    },
    {
        "rel": "set-return-reason",
        "href": "/api/v1/draft-returns/1/returning-items/12/return-reason",
    },
    {"rel": "totals", "href": "/api/v1/draft-returns/1/totals", "method": "get"},
]


def test_next_steps_are_loops_rels_in_order_each_once() -> None:
    parsed = draft(links=LINKS)
    assert d.next_steps(parsed) == ("set-return-reason", "totals")
    assert d.allows(parsed, "totals") and not d.allows(parsed, "submit-draft-return")
    assert parsed.links[2].method == "GET"


def test_link_for_one_returning_item() -> None:
    parsed = draft(links=LINKS)
    link = d.link_for(parsed, "set-return-reason", returning_item_id="12")
    assert link is not None and link.href.endswith("/12/return-reason")
    assert d.link_for(parsed, "set-return-reason", returning_item_id=1) is None


def test_require_step_follows_the_links_not_an_order() -> None:
    parsed = draft(state="created", links=LINKS)
    assert d.require_step(parsed, "totals") == parsed.links[2]
    assert d.require_step(parsed, "set_return_reason", returning_item_id=11) == parsed.links[0]
    assert d.require_step(parsed, "get") is None
    with pytest.raises(DraftStepNotAllowed) as info:
        d.require_step(parsed, "submit")
    assert info.value.http_status == 409
    assert info.value.details == {
        "rel": "submit-draft-return",
        "state": "created",
        "nextSteps": ["set-return-reason", "totals"],
    }
    with pytest.raises(DraftStepNotAllowed, match="for returning item 13"):
        d.require_step(parsed, "set_return_reason", returning_item_id=13)
    with pytest.raises(ValueError, match="unknown draft call"):
        d.require_step(parsed, "refund")


def test_a_terminal_draft_allows_nothing() -> None:
    parsed = draft(state="submitted", links=[])
    assert d.next_steps(parsed) == ()
    with pytest.raises(DraftStepNotAllowed):
        d.require_step(parsed, "cancel")


def test_a_link_without_rel_is_refused() -> None:
    with pytest.raises(InvalidUpstreamData, match=r"links\[0\]: `rel` is missing"):
        draft(links=[{"href": "/x"}])


# The peer's outputs ------------------------------------------------------------------------


def test_step_outputs_default_their_state() -> None:
    bare = d.parse_draft({"draft_return": {}})
    assert d.set_return_reason_output(bare) == {"ok": True, "state": "ok"}
    assert d.finalize_items_output(bare) == {"ok": True, "state": "ok"}
    assert d.cancel_draft_return_output(bare) == {"ok": True, "state": "cancelled"}
    assert d.submit_return_output(bare) == {"ok": True, "state": "submitted", "returnId": "0"}
    assert d.add_exchange_item_output(bare, 771) == {
        "ok": True,
        "state": "ok",
        "exchangeVariantId": "0",
    }


def test_the_exchange_variant_is_the_one_for_the_returning_item() -> None:
    parsed = draft(
        state="exchange_added",
        cart_items=[
            {"variant_id": 1, "exchange_for_returning_item_id": 770},
            {"variant_id": 48087696801943, "exchange_for_returning_item_id": "771"},
        ],
    )
    assert d.add_exchange_item_output(parsed, "771")["exchangeVariantId"] == "48087696801943"


def test_the_added_item_is_matched_as_an_integer() -> None:
    parsed = draft(returning_items=[{"id": 757122, "order_line_item_id": "401103686"}])
    assert d.add_return_item_output(parsed, "0401103686") == {
        "returningItemId": "757122",
        "orderLineItemId": "401103686",
    }
    with pytest.raises(InvalidUpstreamData) as info:
        d.add_return_item_output(parsed, 401103687)
    assert info.value.message == (
        "the item was added but Loop's response contained no returning item "
        "for order line item 401103687"
    )
    assert d.error_output(info.value) == info.value.message


def test_eligibility_defaults() -> None:
    parsed = draft(
        state="created",
        context={
            "order": {"line_items": [{"id": 7, "title": "Tee"}]},
            "return_method_options": [{"id": 4, "name": "Mail", "type": "mail"}],
        },
    )
    out = d.check_eligibility_output(parsed)
    assert out["lineItems"] == [
        {
            "id": "7",
            "title": "Tee",
            "variantTitle": None,
            "price": 0,
            "image": None,
            "providerProductId": "0",
            "providerVariantId": "0",
        }
    ]
    assert out["returnMethodOptions"] == [{"id": "4", "name": "Mail", "type": "mail"}]
    assert (out["itemsEligible"], out["itemsNotEligible"]) == ([], [])


def test_return_details_defaults() -> None:
    details = d.parse_return_details({"id": "5", "line_items": [{"id": 1, "refund": 250}]})
    out = d.get_return_details_output(details)
    amounts = ("returnTotal", "refund", "exchange", "giftCard", "handlingFee")
    assert [out[k] for k in amounts] == [0] * 5
    assert out["lineItems"][0]["refundAmount"] == 250
    assert out["lineItems"][0]["quantity"] == 0
    assert "refund" not in out["lineItems"][0]


def test_details_without_id_read_as_no_return() -> None:
    assert not d.has_return({"message": "No return found with this ID"})
    with pytest.raises(InvalidUpstreamData, match="no return found: No return found with this ID"):
        d.parse_return_details({"message": "No return found with this ID"})


def test_totals_output() -> None:
    totals = d.DraftTotals(d.Money(800, "USD"), None, False)
    assert d.get_draft_totals_output(totals) == {
        "amountDue": {"amount": 800, "currencyCode": "USD"},
        "exchangeFee": None,
        "isDifferenceCovered": False,
    }


# The peer's error rules ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"errors": [{"message": "first"}, {"message": "second"}], "message": "m"}, "first"),
        (
            {"errors": [{"code": "action-validation-failed", "message": ""}]},
            "action-validation-failed",
        ),
        ({"errors": ["as text"]}, "as text"),
        ({"errors": [], "message": "top"}, "top"),
        ({"error": {"message": "Unauthorized."}}, "Unauthorized."),
        ("Bad Gateway", "Bad Gateway"),
        (None, "unexpected error from Loop"),
        ({"errors": [{}]}, "unexpected error from Loop"),
    ],
)
def test_the_upstream_message_of_a_failure(body: Any, text: str) -> None:
    assert d.draft_failure_text(body) == text


def test_error_output_renders_each_kind() -> None:
    rejected = DraftRejected("x", errors=[{"code": "c", "message": "x"}], status=422)
    assert d.error_output(rejected) == {"errors": [{"code": "c", "message": "x"}]}
    older = LoopValidationError("y", errors=[{"message": "y"}], status=422)
    assert d.error_output(older) == {"errors": [{"message": "y"}]}
    assert d.error_output(LoopAuthError("Unauthorized.", status=401)) == d.UNAUTHORIZED_MESSAGE
    assert d.error_output(LoopAuthError("unable to execute action: 'no'", status=403)) == (
        "unable to execute action: 'no'"
    )
    assert d.error_output(LoopRejected("unable to execute action: 'z'", status=409)) == (
        "unable to execute action: 'z'"
    )


# Ids and amounts --------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=d.INT64_MAX))
def test_wire_ids_keep_every_digit(number: int) -> None:
    assert d.read_id(number, "id") == str(number)
    assert d.read_id(str(number), "id") == str(number)


@given(st.integers(min_value=1, max_value=d.INT64_MAX))
def test_input_ids_as_text_or_numbers(number: int) -> None:
    assert d.input_id(number, "id") == d.input_id(str(number), "id") == number


@given(st.integers(min_value=-d.INT64_MAX, max_value=d.INT64_MAX))
def test_amounts_stay_integers(amount: int) -> None:
    read = d.read_amount(amount, "amount")
    assert read == amount and type(read) is int


@pytest.mark.parametrize("value", ["", "1.0", "+1", "1e3", "١٢", True, None, 0, 2**63])
def test_input_ids_that_are_not_ids(value: Any) -> None:
    with pytest.raises(InvalidInput):
        d.input_id(value, "draft_id")
