"""Loading a World from the contract's sandbox data file.

A bad file must fail at start-up, never at the first request, so every field the
simulator relies on is checked here and reported as `<path>: <where>: <reason>`.
Return objects are only checked for what the simulator reads (id, customer,
timestamps); the rest is served back untouched.

For draft returns the file may also give `orders[].line_items`, `products`, `reasons`
and `return_methods` (the contract), prices as "12.00" strings that become integer
minor units (exact in the shop's currency, or the file is refused). Absent `reasons`
or `return_methods` give the seeded world's; absent `products`, no exchange catalog.
Additions of the sandbox, all optional: `shop.exchange_fee` ("0.00": a fee charged once
per return with an exchange), `shop.draft_returns_enabled` (true: whether Loop has
turned the Return Create API on for the shop), `products[].options` (option names for
the parts of the variant titles, "Size" for "L" in "L / Blue"), `products[].image`,
`products[].product_type`, `variants[].image`, `variants[].sku`, `reasons[].parent`
(the parent reason the returns list shows).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from loopdesk.errors import ConfigError
from loopdesk.sandbox.drafts.money import is_amount, minor_units
from loopdesk.sandbox.seed_drafts import default_reasons, default_return_methods
from loopdesk.sandbox.world import DEFAULT_SHOP, World, laravel, parse_ts, utcnow


def _timestamp(value: str) -> str:
    try:
        parse_ts(value)
    except ValueError:
        raise ValueError("not an ISO-8601 timestamp") from None
    return value


def _return_id(value: Any) -> str | int:
    # bool is an int to Python, but never a return id.
    if isinstance(value, str | int) and not isinstance(value, bool):
        return value
    raise ValueError("must be a string or an integer")


def _amount(value: str) -> str:
    if not is_amount(value):
        raise ValueError('not an amount such as "12.00"')
    return value


Timestamp = Annotated[str, AfterValidator(_timestamp)]
Amount = Annotated[str, AfterValidator(_amount)]
ReturnId = Annotated[Any, AfterValidator(_return_id)]


class _Model(BaseModel):
    # Strict: a number where the contract says string is a broken file, not a guess.
    model_config = ConfigDict(strict=True, extra="ignore")


class _Shop(_Model):
    name: str = DEFAULT_SHOP["name"]
    domain: str = DEFAULT_SHOP["domain"]
    currency: str = DEFAULT_SHOP["currency"]
    return_window_days: int = DEFAULT_SHOP["return_window_days"]
    exchange_fee: Amount = DEFAULT_SHOP["exchange_fee"]
    draft_returns_enabled: bool = DEFAULT_SHOP["draft_returns_enabled"]


class _Return(_Model):
    id: ReturnId
    customer: str
    created_at: Timestamp
    updated_at: Timestamp


class _Note(_Model):
    id: int
    content: str
    created_at: Timestamp


class _Shipment(_Model):
    trackingCode: str
    status: str
    carrierDisplayName: str
    trackingUrl: str | None = None
    eta: str | None = None
    deliveredAt: Timestamp | None = None


class _LineItem(_Model):
    id: int
    title: str
    variant_title: str | None = None
    price: Amount | None = None
    product_id: int | None = None
    variant_id: int | None = None
    sku: str | None = None
    quantity: int = Field(default=1, ge=0)
    tags: list[str] = Field(default_factory=list)


class _Order(_Model):
    name: str
    customer_email: str
    zip: str
    created_at: Timestamp
    shipments: list[_Shipment] = Field(default_factory=list)
    # What the order holds (optional): Order Tracking's `lineItems` are made from it.
    line_items: list[_LineItem] | None = None

    def world_dict(self) -> dict[str, Any]:
        data = self.model_dump()
        if self.line_items is None:
            data.pop("line_items")
        return data


class _Variant(_Model):
    id: int
    title: str
    price: Amount
    inventory: int
    image: str | None = None
    sku: str | None = None


class _Product(_Model):
    id: int
    title: str
    variants: list[_Variant]
    options: list[str] | None = None
    image: str | None = None
    product_type: str | None = None

    def world_dict(self) -> dict[str, Any]:
        data = self.model_dump()
        if self.options is None:
            data.pop("options")
        return data


class _Reason(_Model):
    id: int
    name: str
    parent: str | None = None


class _ReturnMethod(_Model):
    id: int
    name: str
    type: str


class _AllowlistEntry(_Model):
    id: int
    type: Literal["order", "product", "email", "product_tag"]
    value: str
    created_at: Timestamp | None = None


class _File(_Model):
    shop: _Shop = Field(default_factory=_Shop)
    returns: list[_Return]
    notes: dict[str, list[_Note]] = Field(default_factory=dict)
    orders: list[_Order] = Field(default_factory=list)
    allowlist: list[_AllowlistEntry] = Field(default_factory=list)
    products: list[_Product] = Field(default_factory=list)
    reasons: list[_Reason] | None = None
    return_methods: list[_ReturnMethod] | None = None


def load_world(path: Path) -> World:
    """The World a contract data file describes; ConfigError names the path and reason."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read sandbox data: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: sandbox data is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: sandbox data must be a JSON object")
    try:
        parsed = _File.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc)}") from exc
    return _build(path, raw, parsed)


def _build(path: Path, raw: dict[str, Any], parsed: _File) -> World:
    returns: dict[str, dict[str, Any]] = {}
    for index, (item, checked) in enumerate(zip(raw["returns"], parsed.returns, strict=True)):
        key = str(checked.id)
        if key in returns:
            raise ConfigError(f"{path}: returns[{index}].id: duplicate return id {key!r}")
        returns[key] = item
    _check_draft_data(path, parsed)
    loaded_at = laravel(utcnow())
    reasons = parsed.reasons
    methods = parsed.return_methods
    return World(
        shop=parsed.shop.model_dump(),
        returns=returns,
        # Notes are served in Laravel's format whatever ISO variant the file used.
        notes={
            rid: [
                {"id": n.id, "content": n.content, "created_at": laravel(parse_ts(n.created_at))}
                for n in notes
            ]
            for rid, notes in parsed.notes.items()
        },
        orders=[o.world_dict() for o in parsed.orders],
        allowlist=[
            {
                "id": e.id,
                "type": e.type,
                "value": e.value,
                "secondary_value": None,
                "created_at": laravel(parse_ts(e.created_at)) if e.created_at else loaded_at,
            }
            for e in parsed.allowlist
        ],
        products=[p.world_dict() for p in parsed.products],
        reasons=default_reasons() if reasons is None else [r.model_dump() for r in reasons],
        return_methods=(
            default_return_methods() if methods is None else [m.model_dump() for m in methods]
        ),
    )


def _check_draft_data(path: Path, parsed: _File) -> None:
    """Ids the draft returns look things up by are unique, and every price is exact in
    the shop's currency (no "12.50" yen)."""
    currency = parsed.shop.currency

    def unique(where: str, ids: list[int]) -> None:
        seen: set[int] = set()
        for index, value in enumerate(ids):
            if value in seen:
                raise ConfigError(f"{path}: {where.format(index)}.id: duplicate id {value}")
            seen.add(value)

    def exact(where: str, amount: str | None) -> None:
        try:
            if amount is not None:
                minor_units(amount, currency)
        except ValueError:
            raise ConfigError(
                f"{path}: {where}: {amount!r} is not an exact amount in {currency}"
            ) from None

    exact("shop.exchange_fee", parsed.shop.exchange_fee)
    for o, order in enumerate(parsed.orders):
        unique(f"orders[{o}].line_items[{{}}]", [i.id for i in order.line_items or ()])
        for i, item in enumerate(order.line_items or ()):
            exact(f"orders[{o}].line_items[{i}].price", item.price)
    unique("products[{}]", [p.id for p in parsed.products])
    seen: set[int] = set()
    for p, product in enumerate(parsed.products):
        for v, variant in enumerate(product.variants):
            exact(f"products[{p}].variants[{v}].price", variant.price)
            if variant.id in seen:
                where = f"products[{p}].variants[{v}].id"
                raise ConfigError(f"{path}: {where}: duplicate variant id {variant.id}")
            seen.add(variant.id)
    unique("reasons[{}]", [r.id for r in parsed.reasons or ()])
    unique("return_methods[{}]", [m.id for m in parsed.return_methods or ()])


def _describe(exc: ValidationError) -> str:
    """`returns[3].id: field required`, plus how many other problems there are."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = ""
    for part in first["loc"]:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    # Our own validators' messages read better without pydantic's "Value error, " prefix.
    ctx = first.get("ctx") or {}
    message = str(ctx["error"]) if first["type"] == "value_error" else str(first["msg"])
    message = message[:1].lower() + message[1:]
    text = f"{where}: {message}" if where else message
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return text
