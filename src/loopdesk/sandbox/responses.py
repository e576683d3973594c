"""Response and request helpers shared by the sandbox routes."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


def laravel_invalid(errors: dict[str, list[str]]) -> Response:
    """Laravel's 422: the first message on top, every field's messages below."""
    first = next(iter(errors.values()))[0]
    return json_response({"message": first, "errors": errors}, 422)


async def json_body(request: Request) -> tuple[bool, Any]:
    """(True, value) for a JSON body, (False, None) when it is missing or not JSON."""
    raw = await request.body()
    try:
        return True, json.loads(raw)
    except ValueError:
        return False, None


def error_message(status: int) -> str:
    """The `message` Loop's Laravel app puts in an error body for `status`."""
    if status == 429:
        return "Too Many Attempts."
    if status == 500:
        return "Server Error"
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def retry_after_header(seconds: float) -> str:
    # Whole seconds as HTTP wants; fractions survive so tests can stay fast.
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
