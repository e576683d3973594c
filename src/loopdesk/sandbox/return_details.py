"""Loop Returns `GET /warehouse/return/details`: one return as Loop has it now.

Loop types this answer unlike the lists (reference section 2.3): the id is an integer
and timestamps are Laravel's `YYYY-MM-DD HH:MM:SS`; the sandbox does the same.
"""

from __future__ import annotations

import contextlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from loopdesk.sandbox.loop_returns import NO_RETURN
from loopdesk.sandbox.responses import json_response, laravel_invalid
from loopdesk.sandbox.world import World, laravel, parse_ts

_TIMESTAMPS = ("created_at", "updated_at", "edited_at")


async def return_details(request: Request) -> Response:
    raw = (request.query_params.get("return_id") or "").strip()
    if not raw:
        return laravel_invalid({"return_id": ["The return id field is required."]})
    if not raw.isdigit():
        return laravel_invalid({"return_id": ["The return id must be an integer."]})
    world: World = request.app.state.world
    item = world.get_return(raw) or world.get_return(str(int(raw)))
    if item is None:
        return json_response(NO_RETURN, 404)
    return json_response(_details(item))


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
