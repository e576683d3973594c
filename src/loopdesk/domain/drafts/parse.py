"""A draft endpoint's 2xx body, and the totals endpoint's, read into the models."""

from __future__ import annotations

from typing import Any

from loopdesk.domain.drafts.failures import draft_errors, error_list
from loopdesk.domain.drafts.links import parse_links
from loopdesk.domain.drafts.models import (
    CartItem,
    Draft,
    DraftTotals,
    EligibleItem,
    ExchangeOptions,
    ExchangeVariant,
    IneligibleItem,
    Money,
    OrderLineItem,
    OrderSummary,
    ProductOption,
    Reason,
    ReturningItem,
    ReturnMethodOption,
    VariantOption,
)
from loopdesk.domain.drafts.values import (
    as_list,
    as_mapping,
    as_object,
    as_objects,
    read_amount,
    read_flag,
    read_id,
    read_text,
)
from loopdesk.errors import InvalidUpstreamData


def parse_draft(body: Any) -> Draft:
    """Any draft endpoint's 2xx body (initialize, items, reason, ..., submit, get, cancel)."""
    root = as_object(body, "draft body")
    if not isinstance(root.get("draft_return"), dict):
        raise InvalidUpstreamData("draft body: no `draft_return` object")
    draft: dict[str, Any] = root["draft_return"]
    context = as_mapping(root.get("context"), "context")
    order = context.get("order")
    # The peer also looks for the returning items at the top level.
    items_at, items = "draft_return.returning_items", draft.get("returning_items")
    if not items and root.get("returning_items"):
        items_at, items = "returning_items", root["returning_items"]
    methods_at, methods = "return_method_options", root.get("return_method_options")
    if methods is None:
        methods_at, methods = "context.return_method_options", context.get("return_method_options")
    totals_at = "draft_return.totals" if "totals" in draft else "totals"
    totals = draft.get("totals", root.get("totals"))
    return Draft(
        id=read_id(draft.get("id"), "draft_return.id"),
        state=read_text(draft.get("state"), "draft_return.state"),
        returning_items=tuple(_returning_item(raw, at) for at, raw in as_objects(items, items_at)),
        cart_items=tuple(
            _cart_item(raw, at)
            for at, raw in as_objects(draft.get("cart_items"), "draft_return.cart_items")
        ),
        links=parse_links(root),
        exchange_options=_exchange_catalog(context.get("exchange_options")),
        eligible_items=tuple(
            EligibleItem(read_id(raw.get("order_line_item_id"), f"{at}.order_line_item_id"))
            for at, raw in as_objects(
                context.get("items_eligible_to_return"), "context.items_eligible_to_return"
            )
        ),
        ineligible_items=tuple(
            IneligibleItem(
                read_id(raw.get("order_line_item_id"), f"{at}.order_line_item_id"),
                read_text(raw.get("ineligibility_code"), f"{at}.ineligibility_code"),
            )
            for at, raw in as_objects(
                context.get("items_not_eligible_to_return"), "context.items_not_eligible_to_return"
            )
        ),
        order=None if order is None else _order(order),
        return_method_options=tuple(
            ReturnMethodOption(
                read_id(raw.get("id"), f"{at}.id"),
                read_text(raw.get("name"), f"{at}.name"),
                read_text(raw.get("type"), f"{at}.type"),
            )
            for at, raw in as_objects(methods, methods_at)
        ),
        return_id=read_id(draft.get("return_id"), "draft_return.return_id"),
        credit_type=read_text(draft.get("credit_type"), "draft_return.credit_type"),
        return_method_id=read_id(draft.get("return_method_id"), "draft_return.return_method_id"),
        totals=None if totals is None else _totals(totals, totals_at),
        errors=tuple(draft_errors(root)) if error_list(root) else (),
        reasons=tuple(
            _reason(raw, at)
            for at, raw in as_objects(context.get("return_reasons"), "context.return_reasons")
        ),
        body=root,
    )


def _reason(raw: dict[str, Any], at: str) -> Reason:
    reason_id = read_id(raw.get("id"), f"{at}.id")
    if reason_id is None:
        raise InvalidUpstreamData(f"{at}: `id` is missing")
    return Reason(id=reason_id, name=read_text(raw.get("name"), f"{at}.name"))


def _returning_item(raw: dict[str, Any], at: str) -> ReturningItem:
    item_id = read_id(raw.get("id"), f"{at}.id")
    if item_id is None:
        raise InvalidUpstreamData(f"{at}: `id` is missing")
    return ReturningItem(
        id=item_id,
        order_line_item_id=read_id(raw.get("order_line_item_id"), f"{at}.order_line_item_id"),
        return_type=read_text(raw.get("return_type"), f"{at}.return_type"),
        reason_id=read_id(raw.get("reason_id"), f"{at}.reason_id"),
    )


def _cart_item(raw: dict[str, Any], at: str) -> CartItem:
    return CartItem(
        id=read_id(raw.get("id"), f"{at}.id"),
        variant_id=read_id(raw.get("variant_id"), f"{at}.variant_id"),
        exchange_type=read_text(raw.get("exchange_type"), f"{at}.exchange_type"),
        exchange_for_returning_item_id=read_id(
            raw.get("exchange_for_returning_item_id"), f"{at}.exchange_for_returning_item_id"
        ),
        variant_title=read_text(raw.get("variant_title"), f"{at}.variant_title"),
    )


def _order(raw: Any) -> OrderSummary:
    order = as_mapping(raw, "context.order")
    return OrderSummary(
        id=read_id(order.get("id"), "context.order.id"),
        currency=read_text(order.get("currency"), "context.order.currency"),
        line_items=tuple(
            OrderLineItem(
                id=read_id(item.get("id"), f"{at}.id"),
                title=read_text(item.get("title"), f"{at}.title"),
                variant_title=read_text(item.get("variant_title"), f"{at}.variant_title"),
                price=read_amount(item.get("price"), f"{at}.price") or 0,
                image=read_text(item.get("image"), f"{at}.image"),
                provider_product_id=read_id(
                    item.get("provider_product_id"), f"{at}.provider_product_id"
                ),
                provider_variant_id=read_id(
                    item.get("provider_variant_id"), f"{at}.provider_variant_id"
                ),
            )
            for at, item in as_objects(order.get("line_items"), "context.order.line_items")
        ),
        name=read_text(order.get("name"), "context.order.name"),
    )


def _exchange_catalog(raw: Any) -> tuple[ExchangeOptions, ...]:
    """Loop's object keyed by returning-item id, as a list ordered by that id."""
    catalog = as_mapping(raw, "context.exchange_options")
    entries = []
    for key, value in catalog.items():
        at = f"context.exchange_options.{key}"
        item_id = read_id(key, at)
        if item_id is None:
            raise InvalidUpstreamData(f"{at}: the key is not a returning item id")
        entry = as_mapping(value, at)
        entries.append(
            ExchangeOptions(
                returning_item_id=item_id,
                product_options=tuple(
                    ProductOption(
                        name=read_text(option.get("name"), f"{where}.name") or "",
                        values=tuple(
                            read_text(v, f"{where}.values") or ""
                            for v in as_list(option.get("values"), f"{where}.values")
                        ),
                    )
                    for where, option in as_objects(
                        entry.get("product_options"), f"{at}.product_options"
                    )
                ),
                variants=tuple(
                    _variant(variant, where)
                    for where, variant in as_objects(
                        entry.get("product_variants"), f"{at}.product_variants"
                    )
                ),
            )
        )
    return tuple(sorted(entries, key=lambda e: int(e.returning_item_id)))


def _variant(raw: dict[str, Any], at: str) -> ExchangeVariant:
    options = as_mapping(raw.get("options"), f"{at}.options")
    return ExchangeVariant(
        product_id=read_id(raw.get("product_id"), f"{at}.product_id"),
        variant_id=read_id(raw.get("variant_id"), f"{at}.variant_id"),
        title=read_text(raw.get("title"), f"{at}.title"),
        variant_title=read_text(raw.get("variant_title"), f"{at}.variant_title"),
        product_type=read_text(raw.get("product_type"), f"{at}.product_type"),
        options=tuple(
            VariantOption(name=str(name), value=read_text(value, f"{at}.options.{name}") or "")
            for name, value in sorted(options.items())
        ),
        image=read_text(raw.get("image"), f"{at}.image"),
        price=read_amount(raw.get("price"), f"{at}.price"),
        currency=read_text(raw.get("currency"), f"{at}.currency"),
        is_available=read_flag(raw.get("is_available"), f"{at}.is_available"),
    )


# --- totals ------------------------------------------------------------------------------


def parse_totals(body: Any) -> DraftTotals:
    """`GET .../totals`, in either documented shape.

    The peer reads `data.{amount_due, fees.exchange, is_difference_covered}` with money as
    `{amount, currencyCode}`; Loop's draft object documents `totals.amount_due` with
    `{amount, currency}`, at the top level or inside `draft_return`.
    """
    root = as_object(body, "totals body")
    if root.get("data") is not None:
        return _totals(root["data"], "data")
    if root.get("totals") is not None:
        return _totals(root["totals"], "totals")
    draft = root.get("draft_return")
    if isinstance(draft, dict) and draft.get("totals") is not None:
        return _totals(draft["totals"], "draft_return.totals")
    raise InvalidUpstreamData("totals body: no `data` or `totals` object")


def _totals(raw: Any, at: str) -> DraftTotals:
    totals = as_mapping(raw, at)
    fees = as_mapping(totals.get("fees"), f"{at}.fees")
    return DraftTotals(
        amount_due=read_money(totals.get("amount_due"), f"{at}.amount_due"),
        exchange_fee=read_money(fees.get("exchange"), f"{at}.fees.exchange"),
        is_difference_covered=read_flag(
            totals.get("is_difference_covered"), f"{at}.is_difference_covered"
        ),
    )


def read_money(raw: Any, at: str) -> Money | None:
    """`{amount, currencyCode}` (the peer) or `{amount, currency}` (Loop's draft object)."""
    if raw is None or raw == []:
        return None
    money = as_object(raw, at)
    amount = read_amount(money.get("amount"), f"{at}.amount")
    if amount is None:
        raise InvalidUpstreamData(f"{at}: `amount` is missing")
    currency = money.get("currencyCode", money.get("currency"))
    return Money(amount=amount, currency=read_text(currency, f"{at}.currency"))
