"""Loop Returns, scope `returns`: the v2 returns list and a return's notes.

Validation failures use Laravel's wording and 422 shape, since clients surface the
first message to agents (reference sections 1.2, 2.2 and 2.4).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from loopdesk.sandbox.responses import json_body, json_response, laravel_invalid
from loopdesk.sandbox.world import World, iso, parse_ts

DEFAULT_LIMIT = 300
MAX_LIMIT = 1000
MAX_NOTE_LENGTH = 255
NO_RETURN = {"message": "No return found with this ID"}
NOTE_INVALID = {"errors": {"message": "Content is required and must be less than 255 characters."}}
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INTEGER = re.compile(r"^[+-]?\d+$")


def _world(request: Request) -> World:
    world: World = request.app.state.world
    return world


async def list_returns(request: Request) -> Response:
    """GET /api/v2/returns: `{status, query, data}`, newest `updated_at` first."""
    params = request.query_params
    errors: dict[str, list[str]] = {}
    start = date_param(params, "from", errors, end_of_day=False)
    end = date_param(params, "to", errors, end_of_day=True)
    if start and end and end < start:
        errors["to"] = ["The to must be a date after or equal to from."]
    field = params.get("filter") or "created_at"
    if field not in ("created_at", "updated_at"):
        errors["filter"] = ["The selected filter is invalid."]
    limit = _int_param(params, "limit", errors, default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    offset = _int_param(params, "offset", errors, default=0, low=0, high=None)
    if errors:
        return laravel_invalid(errors)
    email = (params.get("customer_email") or "").strip()
    found = []
    for item in _world(request).returns.values():
        if email and str(item.get("customer", "")).strip().casefold() != email.casefold():
            continue
        moment = parse_ts(item[field])
        if (start and moment < start) or (end and moment > end):
            continue
        found.append(item)
    found.sort(key=lambda r: (parse_ts(r["updated_at"]), str(r["id"])), reverse=True)
    query = {
        "from": iso(start) if start else None,
        "to": iso(end) if end else None,
        "customer_email": email or None,
        "filter": field,
        "limit": limit,
        "offset": offset,
    }
    return json_response(
        {"status": "success", "query": query, "data": found[offset : offset + limit]}
    )


def date_param(
    params: QueryParams, name: str, errors: dict[str, list[str]], *, end_of_day: bool
) -> datetime | None:
    """A date (`to` covers the whole day) or a datetime; absent means unbounded."""
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    if _DATE_ONLY.match(raw):
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            pass
        else:
            return datetime.combine(day, time(23, 59, 59) if end_of_day else time(0), UTC)
    # An unencoded "+00:00" arrives as " 00:00"; Loop's parser forgives it, so do we.
    for candidate in (raw, re.sub(r" (\d{2}:?\d{2})$", r"+\1", raw)):
        try:
            return parse_ts(candidate)
        except ValueError:
            continue
    errors[name] = [f"The {name} is not a valid date."]
    return None


def _int_param(
    params: QueryParams,
    name: str,
    errors: dict[str, list[str]],
    *,
    default: int,
    low: int,
    high: int | None,
) -> int:
    raw = (params.get(name) or "").strip()
    if not raw:
        return default
    if not _INTEGER.match(raw):
        errors[name] = [f"The {name} must be an integer."]
        return default
    value = int(raw)
    if value < low:
        errors[name] = [f"The {name} must be at least {low}."]
    elif high is not None and value > high:
        errors[name] = [f"The {name} must not be greater than {high}."]
    return value


async def list_notes(request: Request) -> Response:
    """GET .../warehouse/return/{id}/notes, newest first, in the configured shape."""
    return_id = request.path_params["return_id"]
    world = _world(request)
    if world.get_return(return_id) is None:
        return json_response(NO_RETURN, 404)
    notes = sorted(
        world.notes.get(return_id, []), key=lambda n: (n["created_at"], n["id"]), reverse=True
    )
    if not notes:
        # Documented by Loop: no notes is a 422 whose body is the JSON `false`.
        return json_response(False, 422)
    if request.app.state.settings.sandbox_notes_shape == "object":
        return json_response({"notes": [_iso_note(n) for n in notes]})
    return json_response(notes)


def _iso_note(note: dict[str, Any]) -> dict[str, Any]:
    moment = parse_ts(note["created_at"])
    return {**note, "created_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}


async def add_note(request: Request) -> Response:
    """POST .../warehouse/return/{id}/note: `true`, or Loop's one 422 for any bad content."""
    return_id = request.path_params["return_id"]
    world = _world(request)
    if world.get_return(return_id) is None:
        return json_response(NO_RETURN, 404)
    ok, body = await json_body(request)
    content = body.get("content") if ok and isinstance(body, dict) else None
    if not isinstance(content, str) or not content.strip() or len(content) > MAX_NOTE_LENGTH:
        return json_response(NOTE_INVALID, 422)
    world.add_note(return_id, content.strip())
    return json_response(True)
