"""Whatever JSON an API could send, normalization yields models or one typed error."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopdesk.domain.models import LoopReturn
from loopdesk.domain.normalize import (
    normalize_notes,
    normalize_orders,
    normalize_return,
    normalize_returns,
    read_return,
)
from loopdesk.domain.timestamps import (
    EARLIEST,
    LATEST,
    normalize_timestamp,
    parse_iso,
    parse_timestamp,
)
from loopdesk.errors import InvalidInput, InvalidUpstreamData

ODD_VALUES = [
    "N/A",
    "29.99",
    "29.9",
    "-1.00",
    "1e999999999",
    "NaN",
    "2022-11-02 00:13:08",
    "2022-11-02T00:13:08+00:00",
    "2022-11-02T00:13:08+0000",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01 00:00:00",
    "\x00",
    "a\x00b",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.integers().map(lambda n: n * 10**400),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(ODD_VALUES),
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


MONEY = re.compile(r"^-?\d+\.\d{2,}$")
MONEY_KEYS = {"productTotal", "discountTotal", "taxTotal", "total", "price", "discount", "tax"}
MONEY_KEYS |= {"handlingFee", "giftCardAmount", "refund", "upsell"}
STAMP_KEYS = {"updatedAt", "createdAt", "editedAt", "labelUpdatedAt", "returnedAt"}


def _leaves(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v, key)
    else:
        yield key, value


def _check_view(item: LoopReturn) -> None:
    """What every view holds, whatever Loop sent: exact 2-dp money, UTC timestamps in
    range, no NUL anywhere, JSON all the way down."""
    dumped = item.to_json()
    assert "\\u0000" not in json.dumps(dumped)
    for key, value in _leaves(dumped):
        if key in MONEY_KEYS:
            assert isinstance(value, str) and MONEY.match(value), (key, value)
            Decimal(value)
        elif key in STAMP_KEYS and value is not None:
            moment = parse_iso(value)
            assert moment.utcoffset() == timedelta(0)
            assert EARLIEST <= moment < LATEST
    assert item.url.endswith(item.id)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_returns())
def test_any_return_object_gives_a_model_or_a_typed_error(raw: dict[str, Any]) -> None:
    result = _model_or_typed_error(lambda: read_return(raw))
    if isinstance(result, InvalidUpstreamData):
        return
    item, problems = result
    _check_view(item)
    assert normalize_return(raw) == item
    for problem in problems:
        assert set(problem.details) == {"returnId", "field"}
        assert problem.details["returnId"] == item.id
        assert problem.message.startswith(f"return {item.id}: ")


SUB_FIELDS = {
    "line_items": ["line_item_id", "price", "discount", "tax", "refund", "title", "returned_at"],
    "exchanges": ["exchange_id", "exchange_order_id", "price", "total", "out_of_stock"],
}


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(sorted(SUB_FIELDS)),
    st.data(),
    json_values,
    st.booleans(),
)
def test_one_bad_sub_field_never_hides_the_return(
    side: str, data: st.DataObject, value: Any, as_entry: bool
) -> None:
    """A `null` (or anything) among the items, or any value in one item field: the
    return is shown, its other items kept, and any blanked field named."""
    raw = json.loads(json.dumps(GOOD_RETURN))
    index = data.draw(st.integers(0, len(raw[side])))
    if as_entry:
        raw[side].insert(index, value)
    else:
        raw[side][0][data.draw(st.sampled_from(SUB_FIELDS[side]))] = value
    item, problems = read_return(raw)
    _check_view(item)
    items = item.return_.items if side == "line_items" else item.exchange.items
    fields = [p.details["field"] for p in problems]
    if as_entry and not isinstance(value, dict):
        assert len(items) == 1 and fields == [f"{side}[{index}]"]
    else:
        assert len(items) == len(raw[side])
    assert all(f.startswith(side) for f in fields)
    other = item.exchange.items if side == "line_items" else item.return_.items
    assert len(other) == 1


@settings(max_examples=300)
@given(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1),
    st.sampled_from(["colon", "compact", "naive", "laravel", "z"]),
)
def test_any_timestamp_reads_as_utc_or_missing(
    moment: datetime, offset_minutes: int, style: str
) -> None:
    """Offsets up to ±23:59 on any date Python can hold (year 1 to 9999): never an
    exception, always UTC in range or None, and equal to the moment written."""
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    text = {
        "colon": f"{base}{sign}{hours:02d}:{minutes:02d}",
        "compact": f"{base}{sign}{hours:02d}{minutes:02d}",
        "naive": base,
        "laravel": base.replace("T", " "),
        "z": f"{base}Z",
    }[style]
    result = normalize_timestamp(text)
    written = moment.replace(microsecond=0)
    expected: datetime | None = written.replace(tzinfo=UTC)
    if style in ("colon", "compact"):
        zone = timezone(timedelta(minutes=offset_minutes))
        try:
            expected = written.replace(tzinfo=zone).astimezone(UTC)
        except OverflowError:
            expected = None
    if expected is not None and EARLIEST <= expected < LATEST:
        assert result is not None and parse_iso(result) == expected
        assert parse_timestamp(text, field="since") == expected
    else:
        assert result is None
        with pytest.raises(InvalidInput):
            parse_timestamp(text, field="since")


@given(st.text(max_size=40))
def test_any_text_as_a_timestamp_is_total(text: str) -> None:
    result = normalize_timestamp(text)
    assert result is None or EARLIEST <= parse_iso(result) < LATEST


@given(
    st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
        lambda d: abs(d.adjusted()) < 15
    )
)
def test_money_strings_keep_their_value_with_two_places(amount: Decimal) -> None:
    item = normalize_return({**GOOD_RETURN, "refund": str(amount)})
    refund = item.costBreakdown.refund
    assert MONEY.match(refund) and Decimal(refund) == amount


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
    dropped = [p for p in result.problems if "index" in p.details]
    blanked = [p for p in result.problems if "field" in p.details]
    # Every record is shown or reported as left out; nothing else happens to it.
    assert len(result.items) + len(dropped) == len(raw_list)
    assert len(dropped) + len(blanked) == len(result.problems)
    assert {p.details["returnId"] for p in blanked} <= {r.id for r in result.items}
    assert len(result.sources) == len(result.items)


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
