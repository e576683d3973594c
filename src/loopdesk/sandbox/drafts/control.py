"""`/_sandbox/draft-returns*`: switches and stand-ins for what happens outside the API.

- `GET  /_sandbox/draft-returns`: the switches and every draft's id, state, order.
- `POST /_sandbox/draft-returns/settings` `{"enabled": bool, "disabled_status": 401|403,
  "ttl_seconds": int, "totals_shape": "peer"|"documented", "exchange_fee": "8.00"}`
  (any subset): `enabled` and `exchange_fee` are the shop's (`draft_returns_enabled`,
  `exchange_fee`), the others the draft book's.
- `POST /_sandbox/draft-returns/clock` `{"advance_seconds": N}` or `{"reset": true}`:
  moves the clock drafts expire by and order ages are measured on.
- `POST /_sandbox/draft-returns/{id}/pay`: the customer pays what the draft owes
  (`is_difference_covered` becomes true).
- `POST /_sandbox/variants/{id}/inventory` `{"inventory": N}`: stock changes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from loopdesk.sandbox.drafts import answers
from loopdesk.sandbox.drafts.model import DraftBook
from loopdesk.sandbox.drafts.money import is_amount
from loopdesk.sandbox.drafts.routes import book_of
from loopdesk.sandbox.responses import json_body, json_response
from loopdesk.sandbox.world import World, iso
from loopdesk.settings import Settings


def _amount(value: str) -> str:
    if not is_amount(value):
        raise ValueError('must be a decimal amount such as "8.00"')
    return value


class SettingsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    enabled: bool | None = None
    disabled_status: Literal[401, 403] | None = None
    ttl_seconds: int | None = Field(default=None, ge=1)
    totals_shape: Literal["peer", "documented"] | None = None
    exchange_fee: Annotated[str, AfterValidator(_amount)] | None = None


class ClockSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    advance_seconds: float = Field(default=0, ge=0)
    reset: bool = False


class InventorySpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    inventory: int


def install(app: Any, settings: Settings) -> None:
    app.state.drafts = DraftBook(
        ttl=timedelta(seconds=settings.sandbox_draft_ttl_seconds),
        totals_shape=settings.sandbox_totals_shape,
    )


def _invalid(exc: ValidationError) -> Response:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return json_response({"message": f"{where}: {first['msg']}"}, 422)


def _state(world: World, book: DraftBook) -> dict[str, Any]:
    return {
        "settings": {
            "enabled": bool(world.shop.get("draft_returns_enabled", True)),
            "disabled_status": book.disabled_status,
            "ttl_seconds": int(book.ttl.total_seconds()),
            "totals_shape": book.totals_shape,
            "exchange_fee": world.shop.get("exchange_fee", "0.00"),
            "now": iso(book.now()),
        },
        "drafts": [
            {"id": d.id, "state": d.state, "order_name": d.order_name, "return_id": d.return_id}
            for d in (book.get(i) for i in list(book.drafts))
            if d is not None
        ],
    }


async def show(request: Request) -> Response:
    return json_response(_state(request.app.state.world, book_of(request)))


async def update_settings(request: Request) -> Response:
    ok, body = await json_body(request)
    try:
        spec = SettingsSpec.model_validate(body if ok else None)
    except ValidationError as exc:
        return _invalid(exc)
    world: World = request.app.state.world
    book = book_of(request)
    if spec.enabled is not None:
        world.shop["draft_returns_enabled"] = spec.enabled
    if spec.exchange_fee is not None:
        world.shop["exchange_fee"] = spec.exchange_fee
    if spec.disabled_status is not None:
        book.disabled_status = spec.disabled_status
    if spec.ttl_seconds is not None:
        book.ttl = timedelta(seconds=spec.ttl_seconds)
    if spec.totals_shape is not None:
        book.totals_shape = spec.totals_shape
    return json_response(_state(world, book))


async def move_clock(request: Request) -> Response:
    ok, body = await json_body(request)
    try:
        spec = ClockSpec.model_validate(body if ok else None)
    except ValidationError as exc:
        return _invalid(exc)
    book = book_of(request)
    book.offset = timedelta(0) if spec.reset else book.offset
    book.offset += timedelta(seconds=spec.advance_seconds)
    return json_response({"now": iso(book.now()), "offset_seconds": book.offset.total_seconds()})


async def pay_difference(request: Request) -> Response:
    raw = str(request.path_params["draft_id"])
    draft = book_of(request).get(int(raw)) if raw.isdigit() else None
    if draft is None:
        return answers.not_found()
    draft.difference_paid = True
    return json_response({"id": draft.id, "difference_paid": True})


async def set_inventory(request: Request) -> Response:
    raw = str(request.path_params["variant_id"])
    world: World = request.app.state.world
    found = world.find_variant(int(raw)) if raw.isdigit() else None
    if found is None:
        return json_response({"message": "variant not found"}, 404)
    ok, body = await json_body(request)
    try:
        spec = InventorySpec.model_validate(body if ok else None)
    except ValidationError as exc:
        return _invalid(exc)
    found[1]["inventory"] = spec.inventory
    return json_response({"variant_id": found[1]["id"], "inventory": spec.inventory})


ROUTES = (
    ("GET", "/_sandbox/draft-returns", show),
    ("POST", "/_sandbox/draft-returns/settings", update_settings),
    ("POST", "/_sandbox/draft-returns/clock", move_clock),
    ("POST", "/_sandbox/draft-returns/{draft_id}/pay", pay_difference),
    ("POST", "/_sandbox/variants/{variant_id}/inventory", set_inventory),
)
