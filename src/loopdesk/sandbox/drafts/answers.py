"""The refusals of Loop's Draft Returns API, one definition each.

Two shapes, as in Loop's fixtures: a coded `{"errors": [{"code", "message"}]}` for the
state machine and order lookups, and a bare `{"message"}` for a bad field value.
"""

from __future__ import annotations

from starlette.responses import Response

from loopdesk.sandbox.middleware import LOOP_RETURNS
from loopdesk.sandbox.responses import json_response

NOT_FOUND = {"message": "draft return not found"}
ITEM_NOT_FOUND = {"message": "returning item not found"}
ALREADY_FINALIZED = {"message": "items already finalized"}
ACTION_UNAVAILABLE = "Action is not available in the current draft return state"
# Inferred: Loop's beta must be enabled per shop and names no error for it; the code is
# the one Loop's docs give for a feature the caller cannot use (`unsupported-feature`).
NOT_ENABLED = {
    "errors": [
        {
            "code": "unsupported-feature",
            "message": "The Return Create API is not enabled for this shop.",
        }
    ]
}


def coded(code: str, message: str, status: int = 422) -> Response:
    return json_response({"errors": [{"code": code, "message": message}]}, status)


def invalid(message: str) -> Response:
    return json_response({"message": message}, 422)


def unavailable() -> Response:
    return coded("action-validation-failed", ACTION_UNAVAILABLE)


def not_found() -> Response:
    return json_response(NOT_FOUND, 404)


def item_not_found() -> Response:
    return json_response(ITEM_NOT_FOUND, 404)


def already_finalized() -> Response:
    return json_response(ALREADY_FINALIZED, 409)


def not_enabled(status: int) -> Response:
    """403 with `unsupported-feature` (default), or 401 as for a token lacking a scope."""
    if status == 401:
        return json_response(LOOP_RETURNS.unauthorized, 401)
    return json_response(NOT_ENABLED, status)
