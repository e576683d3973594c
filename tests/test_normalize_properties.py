"""Whatever JSON an API could send, normalization yields models or one typed error."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopdesk.domain.models import LoopReturn
from loopdesk.domain.normalize import (
    normalize_notes,
    normalize_orders,
    normalize_return,
    normalize_returns,
)
from loopdesk.errors import InvalidUpstreamData

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["N/A", "29.99", "-1.00", "2022-11-02 00:13:08", "2022-11-02T00:13:08+00:00"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)

GOOD_RETURN: dict[str, Any] = {
    "id": "25044777",
    "state": "open",
    "created_at": "2026-11-02T04:51:33+00:00",
    "updated_at": "2026-11-03 04:51:33",
    "customer": "Primary@Email.com",
    "outcome": "exchange+refund",
    "return_total": "29.99",
    "line_items": [{"line_item_id": 1, "price": "-29.99", "refund": 29.99, "returned_at": "N/A"}],
    "exchanges": [{"exchange_id": 2, "exchange_order_id": 4804378558615, "out_of_stock": True}],
    "label_updated_at": "N/A",
    "destination_id": 7295,
}

RETURN_KEYS = [
    *GOOD_RETURN,
    "edited_at",
    "currency",
    "order_id",
    "order_name",
    "provider_order_id",
    "order_number",
    "return_product_total",
    "refund",
    "gift_card",
    "handling_fee",
    "upsell",
    "carrier",
    "tracking_number",
    "label_status",
    "status_page_url",
    "return_method",
]


def mutated_returns() -> st.SearchStrategy[dict[str, Any]]:
    """A real return with some keys dropped, nulled or replaced by any JSON value."""
    return st.builds(
        lambda drops, changes, extra: {
            **{k: v for k, v in GOOD_RETURN.items() if k not in drops},
            **changes,
            **extra,
        },
        st.sets(st.sampled_from(list(GOOD_RETURN))),
        st.dictionaries(st.sampled_from(RETURN_KEYS), json_values, max_size=4),
        st.dictionaries(st.text(min_size=1, max_size=6), json_values, max_size=2),
    )


def _model_or_typed_error(call: Any) -> Any:
    try:
        return call()
    except InvalidUpstreamData as exc:
        assert exc.message
        return exc


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_returns())
def test_any_return_object_gives_a_model_or_a_typed_error(raw: dict[str, Any]) -> None:
    result = _model_or_typed_error(lambda: normalize_return(raw))
    if isinstance(result, LoopReturn):
        dumped = result.to_json()
        json.dumps(dumped)  # always serializable
        for side in (result.return_, result.exchange):
            Decimal(side.total)  # money stays exact text
        assert result.url.endswith(result.id)


@settings(max_examples=300)
@given(json_values)
def test_any_body_for_each_kind_is_total(body: Any) -> None:
    for call in (
        lambda: normalize_returns(body, ["a@b.c"]),
        lambda: normalize_returns(body),
        lambda: normalize_notes(body, "1"),
        lambda: normalize_orders(body),
    ):
        _model_or_typed_error(call)


@settings(max_examples=200)
@given(st.lists(st.one_of(mutated_returns(), json_values), max_size=4))
def test_lists_keep_good_records_and_report_bad_ones(raw_list: list[Any]) -> None:
    result = normalize_returns({"data": raw_list})
    assert len(result.items) + len(result.problems) == sum(
        1 for r in raw_list if isinstance(r, dict) and isinstance(r.get("customer"), str)
    ) or all(isinstance(p, InvalidUpstreamData) for p in result.problems)
    assert len(result.items) + len(result.problems) <= len(raw_list)


@given(
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "id": json_values,
                "content": json_values,
                "created_at": json_values,
            },
        ),
        max_size=4,
    ),
    st.booleans(),
)
def test_notes_in_either_shape(notes: list[dict[str, Any]], wrapped: bool) -> None:
    body = {"notes": notes} if wrapped else notes
    result = normalize_notes(body, "42")
    assert len(result.items) + len(result.problems) == len(notes)
    assert all(n.returnId == "42" for n in result.items)


@given(
    st.lists(
        st.fixed_dictionaries(
            {"name": st.text(min_size=1, max_size=10)},
            optional={
                "shipments": st.lists(
                    st.dictionaries(
                        st.sampled_from(["trackingCode", "status", "carrierDisplayName", "eta"]),
                        scalars,
                    ),
                    max_size=3,
                ),
            },
        ),
        max_size=15,
    )
)
def test_orders_are_capped_and_linked(orders: list[dict[str, Any]]) -> None:
    result = normalize_orders({"data": {"orders": orders}}, limit=10)
    assert len(result.items) <= 10
    for order in result.items:
        assert order.id == order.name
        assert order.shipmentUrl and order.shipmentUrl.startswith("https://app.wonderment.com/")
