"""Loop return actions: POST .../warehouse/return/{id}/process|close|cancel|flag.

Loop's state machine (reference section 3): process open->closed (Loop queues it; the
sandbox closes at once), flag open->review, cancel open->cancelled, close
open|review->closed. Refusals keep the bodies Loop documents, which differ per action
and state, and come with HTTP 200 as Loop documents them (reference sections 1.2 and 3),
so a client that trusts the status alone is caught here and not in production. Loop's
real status is unverified: `app.state.state_error_status = 422` (for the whole app) or
the header `X-Sandbox-State-Error-Status: 422` (for one request) answers 422 instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from loopdesk.sandbox.responses import json_response
from loopdesk.sandbox.webhooks import emit, return_event
from loopdesk.sandbox.world import World, iso, utcnow

NO_RETURN = {"message": "No return found with this ID"}
STATUS_HEADER = "x-sandbox-state-error-status"
STATE_ERROR_STATUSES = (200, 422)
DEFAULT_STATE_ERROR_STATUS = 200


@dataclass(frozen=True)
class Action:
    name: str
    participle: str  # for "... therefore cannot be <participle>."
    allowed_from: tuple[str, ...]
    to: str
    # Documented bodies for particular refused states; the rest get the generic one.
    special: dict[str, dict[str, Any]]


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action(
            "process",
            "processed",
            ("open",),
            "closed",
            {
                "cancelled": {"message": "Return is cancelled and therefore cannot be processed."},
                "review": {
                    "errors": {
                        "message": "Return is review and therefore cannot be processed.",
                        "code": "UNPROCESSABLE_FLAGGED_RETURN",
                    }
                },
            },
        ),
        Action("flag", "flagged", ("open",), "review", {}),
        Action(
            "cancel",
            "cancelled",
            ("open",),
            "cancelled",
            {
                "expired": {"content": "Return is expired and cannot be processed."},
                "review": {"content": "Return is flagged and cannot be processed."},
            },
        ),
        Action("close", "closed", ("open", "review"), "closed", {}),
    )
}


def refusal_body(action: Action, state: str) -> dict[str, Any]:
    """What Loop answers when `action` is not allowed from `state`."""
    if state in action.special:
        return action.special[state]
    return {
        "errors": {
            "message": f"Return is {state} and therefore cannot be {action.participle}.",
            "code": "UNPROCESSABLE_RETURN",
        }
    }


def apply(world: World, return_id: str, action: Action) -> dict[str, Any] | None:
    """Move the return to the action's state; None if it exists but may not move."""
    item = world.get_return(return_id)
    if item is None or item.get("state") not in action.allowed_from:
        return None
    item["state"] = action.to
    item["updated_at"] = iso(utcnow())
    return item


def _state_error_status(request: Request) -> int | None:
    raw = request.headers.get(STATUS_HEADER, "").strip()
    if not raw:
        status: int = getattr(request.app.state, "state_error_status", DEFAULT_STATE_ERROR_STATUS)
        return status
    return int(raw) if raw in {str(s) for s in STATE_ERROR_STATUSES} else None


def _route(action: Action) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        error_status = _state_error_status(request)
        if error_status is None:
            allowed = " or ".join(str(s) for s in STATE_ERROR_STATUSES)
            message = f"X-Sandbox-State-Error-Status must be {allowed}"
            return json_response({"message": message}, 400)
        world: World = request.app.state.world
        return_id = request.path_params["return_id"]
        item = world.get_return(return_id)
        if item is None:
            return json_response(NO_RETURN, 404)
        state = str(item.get("state"))
        if apply(world, return_id, action) is None:
            return json_response(refusal_body(action, state), error_status)
        events = [return_event(world, item, "return.updated")]
        if action.to == "closed":
            events.append(return_event(world, item, "return.closed"))
        emit(request.app, events)
        return json_response(True)

    handle.__name__ = f"{action.name}_return"
    handle.__doc__ = f"POST .../warehouse/return/{{id}}/{action.name}"
    return handle


process_return = _route(ACTIONS["process"])
flag_return = _route(ACTIONS["flag"])
cancel_return = _route(ACTIONS["cancel"])
close_return = _route(ACTIONS["close"])
