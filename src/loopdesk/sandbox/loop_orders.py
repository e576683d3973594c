"""Loop Returns, scope `orders`: return deep links and the allowlist.

Where Loop's reference leaves a body unknown (deep-link refusals, DELETE allowlist),
the sandbox picks one fixed, documented-looking answer so clients can be tested
against something stable (reference sections 4 and 5).
"""

from __future__ import annotations

import math
import uuid
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from loopdesk.sandbox.responses import json_body, json_response, laravel_invalid
from loopdesk.sandbox.world import ALLOWLIST_TYPES, World

LINK_MISSING_FIELDS = {"errors": {"message": 'Missing fields - "name" and "zip" are required.'}}
ORDER_NOT_FOUND = {"errors": ["ORDER_NOT_FOUND"]}
ORDER_MISMATCH = {"errors": ["The order could not be found with the provided information."]}
NOT_FOUND = {"errors": {"code": "NOT_FOUND"}}
DEFAULT_PER_PAGE = 100


def _world(request: Request) -> World:
    world: World = request.app.state.world
    return world


def _text(value: Any) -> str:
    """A form value as Laravel sees it: numbers are fine, anything else is missing."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    return str(value).strip()


async def order_link(request: Request) -> Response:
    """POST .../order/link: a deep link when `zip` matches the order's ZIP or email."""
    _, body = await json_body(request)
    fields = body if isinstance(body, dict) else {}
    name, zip_code = _text(fields.get("name")), _text(fields.get("zip"))
    if not name or not zip_code:
        return json_response(LINK_MISSING_FIELDS, 422)
    world = _world(request)
    order = world.find_order(name)
    if order is None:
        return json_response(ORDER_NOT_FOUND, 400)
    accepted = {str(order["zip"]).strip().casefold(), str(order["customer_email"]).casefold()}
    if zip_code.casefold() not in accepted:
        return json_response(ORDER_MISMATCH, 400)
    # Same order and answer, same link: clients and tests can compare URLs.
    token = uuid.uuid5(uuid.NAMESPACE_URL, f"{name}|{zip_code.casefold()}")
    return json_response({"url": f"https://{world.domain}/#/link/{token}"})


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: entry[k] for k in ("id", "type", "value", "secondary_value")}


async def create_allowlist(request: Request) -> Response:
    """POST .../allowlists: 201 with the new entry, or Laravel's 422."""
    _, body = await json_body(request)
    fields = body if isinstance(body, dict) else {}
    errors: dict[str, list[str]] = {}
    type_, value = fields.get("type"), fields.get("value")
    if type_ in (None, ""):
        errors["type"] = ["The type field is required."]
    elif type_ not in ALLOWLIST_TYPES:
        errors["type"] = ["The selected type is invalid."]
    if value is None or (isinstance(value, str) and not value.strip()):
        errors["value"] = ["The value field is required."]
    elif not isinstance(value, str):
        errors["value"] = ["The value must be a string."]
    secondary = fields.get("secondary_value")
    if secondary is not None and not isinstance(secondary, str):
        errors["secondary_value"] = ["The secondary value must be a string."]
    if errors:
        return laravel_invalid(errors)
    assert isinstance(type_, str) and isinstance(value, str)
    entry = _world(request).add_allowlist(type_, value.strip())
    return json_response(_public(entry), 201)


async def list_allowlist(request: Request) -> Response:
    """GET .../allowlists: Laravel's LengthAwarePaginator page."""
    params = request.query_params
    page = _positive(params.get("page"), 1)
    per_page = _positive(params.get("per_page"), DEFAULT_PER_PAGE)
    entries = sorted(_world(request).allowlist, key=lambda e: e["id"])
    items = [_public(e) for e in entries[(page - 1) * per_page : page * per_page]]
    total = len(entries)
    last = max(1, math.ceil(total / per_page))
    path = str(request.url.replace(query=""))
    # Page URLs keep the caller's other parameters (per_page), as withQueryString() does.
    kept = [(k, v) for k, v in params.multi_items() if k != "page"]

    def url(number: int) -> str:
        return f"{path}?{urlencode([*kept, ('page', str(number))])}"

    prev_url = url(page - 1) if page > 1 else None
    next_url = url(page + 1) if page < last else None
    first_index = (page - 1) * per_page + 1
    links = [
        {"url": prev_url, "label": "&laquo; Previous", "active": False},
        *({"url": url(n), "label": str(n), "active": n == page} for n in range(1, last + 1)),
        {"url": next_url, "label": "Next &raquo;", "active": False},
    ]
    return json_response(
        {
            "current_page": page,
            "data": items,
            "first_page_url": url(1),
            "from": first_index if items else None,
            "last_page": last,
            "last_page_url": url(last),
            "links": links,
            "next_page_url": next_url,
            "path": path,
            "per_page": per_page,
            "prev_page_url": prev_url,
            "to": first_index + len(items) - 1 if items else None,
            "total": total,
        }
    )


def _positive(raw: str | None, default: int) -> int:
    # Laravel's paginator quietly falls back to its default for a page it cannot read.
    try:
        value = int(raw or "")
    except ValueError:
        return default
    return value if value >= 1 else default


def _entry_id(request: Request) -> int | None:
    try:
        return int(request.path_params["entry_id"])
    except ValueError:
        return None


async def get_allowlist(request: Request) -> Response:
    entry_id = _entry_id(request)
    entry = None if entry_id is None else _world(request).get_allowlist(entry_id)
    if entry is None:
        return json_response(NOT_FOUND, 404)
    return json_response({**_public(entry), "created_at": entry["created_at"]})


async def delete_allowlist(request: Request) -> Response:
    entry_id = _entry_id(request)
    if entry_id is None or not _world(request).delete_allowlist(entry_id):
        return json_response(NOT_FOUND, 404)
    return json_response({"message": "Allowlist item deleted."})
