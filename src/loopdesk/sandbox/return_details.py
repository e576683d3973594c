"""Loop Returns `GET /warehouse/return/details`: one return as Loop has it now.

Found by `return_id`, `order_id` or `order_name` (at least one; several must all
match; an order with several returns gives its newest), `currency_type` `shop` or
`presentment` (the sandbox's shops have one currency, so both read the same).

Loop types this answer unlike the lists (reference section 2.3): the id is an integer
and timestamps are Laravel's `YYYY-MM-DD HH:MM:SS`; the sandbox does the same. The
reference has two shapes and leaves one status open, so the sandbox has both:

- shape `documented` (default): the list object retyped as above; `peer`: the object
  Gladly's app 1.6.2 reads (`customer_email`, integer minor-unit money, `type`, line
  items `{id, title, sku, quantity, refund, condition, disposition}`).
- a lookup matching nothing answers `{"message": "No return found with this ID"}`
  with 404 (default) or 200, as in Gladly's `not_found` fixture (a 2xx without `id`).

Per request: headers `X-Sandbox-Details-Shape` and `X-Sandbox-Not-Found-Status`; for
the whole sandbox: `POST /_sandbox/details {"shape", "not_found_status"}`.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from loopdesk.sandbox.loop_returns import NO_RETURN
from loopdesk.sandbox.responses import json_body, json_response, laravel_invalid
from loopdesk.sandbox.world import World, laravel, parse_ts

_TIMESTAMPS = ("created_at", "updated_at", "edited_at")
SHAPES = ("documented", "peer")
NOT_FOUND_STATUSES = (404, 200)
SHAPE_HEADER = "x-sandbox-details-shape"
NOT_FOUND_HEADER = "x-sandbox-not-found-status"
CURRENCY_TYPES = ("shop", "presentment")
_REQUIRED = "The {} field is required when none of {} are present."


def _digits(raw: str) -> bool:
    return raw.isascii() and raw.isdigit()


def _switch(request: Request, header: str, name: str, allowed: tuple[Any, ...]) -> Any:
    """The header's value when given (None if it is not one of `allowed`), else the app's."""
    raw = request.headers.get(header, "").strip().lower()
    if not raw:
        return getattr(request.app.state, name, allowed[0])
    return next((value for value in allowed if str(value) == raw), None)


async def return_details(request: Request) -> Response:
    params = request.query_params
    return_id = (params.get("return_id") or "").strip()
    order_id = (params.get("order_id") or "").strip()
    order_name = (params.get("order_name") or "").strip()
    currency_type = (params.get("currency_type") or "").strip()
    errors: dict[str, list[str]] = {}
    if not (return_id or order_id or order_name):
        errors["return_id"] = [_REQUIRED.format("return id", "order id / order name")]
    if return_id and not _digits(return_id):
        errors["return_id"] = ["The return id must be an integer."]
    if order_id and not _digits(order_id):
        errors["order_id"] = ["The order id must be an integer."]
    if currency_type and currency_type not in CURRENCY_TYPES:
        errors["currency_type"] = ["The selected currency type is invalid."]
    if errors:
        return laravel_invalid(errors)
    shape = _switch(request, SHAPE_HEADER, "details_shape", SHAPES)
    missing_status = _switch(
        request, NOT_FOUND_HEADER, "details_not_found_status", NOT_FOUND_STATUSES
    )
    if shape is None or missing_status is None:
        message = (
            f"X-Sandbox-Details-Shape must be {' or '.join(SHAPES)}; "
            f"X-Sandbox-Not-Found-Status {' or '.join(map(str, NOT_FOUND_STATUSES))}"
        )
        return json_response({"message": message}, 400)
    world: World = request.app.state.world
    found = _find(world, return_id, order_id, order_name)
    if found is None:
        return json_response(NO_RETURN, int(missing_status))
    return json_response(peer_details(found) if shape == "peer" else _details(found))


def _find(world: World, return_id: str, order_id: str, order_name: str) -> dict[str, Any] | None:
    if return_id:
        item = world.get_return(return_id) or world.get_return(str(int(return_id)))
        candidates = [item] if item is not None else []
    else:
        candidates = list(world.returns.values())
    if order_id:
        wanted = str(int(order_id))
        candidates = [r for r in candidates if _as_int_text(r.get("order_id")) == wanted]
    if order_name:
        candidates = [r for r in candidates if r.get("order_name") == order_name]
    return max(candidates, key=_created, default=None)


def _as_int_text(value: Any) -> str:
    text = str(value if value is not None else "")
    return str(int(text)) if _digits(text) else text


def _created(item: dict[str, Any]) -> tuple[str, str]:
    try:
        moment = parse_ts(str(item.get("created_at")))
    except ValueError:
        return "", str(item.get("id"))
    return moment.isoformat(), str(item.get("id"))


def _details(item: dict[str, Any]) -> dict[str, Any]:
    body = dict(item)
    if str(body.get("id", "")).isdigit():
        body["id"] = int(body["id"])
    for name in _TIMESTAMPS:
        value = body.get(name)
        if isinstance(value, str) and value:
            with contextlib.suppress(ValueError):  # else served back as stored
                body[name] = laravel(parse_ts(value))
    return body


def _cents(value: Any) -> int:
    """A 2-dp money string as integer minor units (0 when unreadable)."""
    try:
        return int(abs(Decimal(str(value))).scaleb(2).to_integral_value())
    except (InvalidOperation, ValueError):
        return 0


def peer_details(item: dict[str, Any]) -> dict[str, Any]:
    """The return in the shape of Gladly's `get_return_details/success` fixture."""
    received = item.get("state") == "closed" or item.get("label_status") == "delivered"
    lines = [x for x in item.get("line_items") or [] if isinstance(x, dict)]
    rid = str(item.get("id", ""))
    return {
        "id": int(rid) if _digits(rid) else rid,
        "state": item.get("state"),
        "order_name": item.get("order_name"),
        "order_number": item.get("order_number"),
        "customer_email": item.get("customer"),
        "currency": item.get("currency"),
        "return_total": _cents(item.get("return_total")),
        "refund": _cents(item.get("refund")),
        "exchange": _cents(item.get("exchange_total")),
        "gift_card": _cents(item.get("gift_card")),
        "handling_fee": _cents(item.get("handling_fee")),
        "carrier": item.get("carrier"),
        "label_status": item.get("label_status"),
        "label_url": item.get("label_url"),
        "tracking_number": item.get("tracking_number"),
        "status_page_url": item.get("status_page_url"),
        "type": "standard",
        "line_items": [
            {
                "id": int(x["line_item_id"])
                if _digits(str(x.get("line_item_id")))
                else x.get("line_item_id"),
                "title": x.get("title"),
                "sku": x.get("sku"),
                "quantity": 1,
                "refund": _cents(x.get("refund")),
                "condition": "new" if received else None,
                "disposition": "restock" if received else None,
            }
            for x in lines
        ],
    }


class DetailsSpec(BaseModel):
    """The body of POST /_sandbox/details."""

    model_config = ConfigDict(extra="forbid", strict=True)

    shape: Literal["documented", "peer"] | None = None
    not_found_status: Literal[404, 200] | None = None


async def configure(request: Request) -> Response:
    ok, body = await json_body(request)
    try:
        spec = DetailsSpec.model_validate(body if ok else None)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        return json_response({"message": f"{where}: {first['msg']}"}, 422)
    if spec.shape is not None:
        request.app.state.details_shape = spec.shape
    if spec.not_found_status is not None:
        request.app.state.details_not_found_status = spec.not_found_status
    state = request.app.state
    return json_response(
        {
            "shape": getattr(state, "details_shape", SHAPES[0]),
            "not_found_status": getattr(state, "details_not_found_status", 404),
        }
    )
