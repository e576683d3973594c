"""`/_sandbox/*`: the sandbox's own control routes (no auth, never faulted or logged)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from loopdesk.sandbox.faults import FaultController
from loopdesk.sandbox.responses import json_body, json_response
from loopdesk.sandbox.webhooks import (
    DEFAULT_BASE_DELAY,
    configure_webhooks,
    emit,
    label_event,
    return_event,
)
from loopdesk.sandbox.world import World, iso, utcnow

NO_RETURN = {"message": "No return found with this ID"}


class FaultSpec(BaseModel):
    """The body of POST /_sandbox/faults: the arguments of `FaultController.add`."""

    model_config = ConfigDict(extra="forbid")

    path_contains: str = ""
    status: int | None = Field(default=None, ge=100, le=599)
    latency_ms: int = Field(default=0, ge=0)
    retry_after: float | None = Field(default=None, ge=0)
    hang: bool = False
    malformed: bool = False
    times: int | None = Field(default=None, ge=0)
    method: str | None = None
    html: bool = False
    # Serve the request, then answer `status` instead (the work done, the answer lost).
    after: bool = False


class WebhookSpec(BaseModel):
    """The body of POST /_sandbox/webhooks: where to send webhooks and how to sign them."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1)
    secret: str = Field(min_length=1)
    # Seconds before the first retry; a test against a live sandbox can make it small.
    base_delay: float = Field(default=DEFAULT_BASE_DELAY, ge=0)


class LabelSpec(BaseModel):
    """The body of POST /_sandbox/returns/{id}/label: the label's new state."""

    model_config = ConfigDict(extra="forbid")

    label_status: str = Field(min_length=1)
    carrier: str | None = None
    tracking_number: str | None = None


def _invalid(exc: ValidationError) -> Response:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return json_response({"message": f"{where}: {first['msg']}"}, 422)


def _faults(request: Request) -> FaultController:
    faults: FaultController = request.app.state.faults
    return faults


async def health(request: Request) -> Response:
    world: World = request.app.state.world
    return json_response(
        {"status": "ok", "returns": len(world.returns), "orders": len(world.orders)}
    )


async def add_fault(request: Request) -> Response:
    ok, body = await json_body(request)
    try:
        spec = FaultSpec.model_validate(body if ok else None)
    except ValidationError as exc:
        return _invalid(exc)
    try:
        _faults(request).add(**spec.model_dump())
    except ValueError as exc:
        return json_response({"message": str(exc)}, 422)
    return json_response({"rules": [r.to_dict() for r in _faults(request).rules]}, 201)


async def list_faults(request: Request) -> Response:
    return json_response({"rules": [r.to_dict() for r in _faults(request).rules]})


async def clear_faults(request: Request) -> Response:
    cleared = len(_faults(request).rules)
    _faults(request).clear()
    return json_response({"cleared": cleared})


async def request_counts(request: Request) -> Response:
    """How many upstream requests each path has received, e.g. {"/graphql": 3}."""
    return json_response(_faults(request).request_counts())


async def reset_requests(request: Request) -> Response:
    _faults(request).reset_log()
    return json_response({"cleared": True})


async def set_webhooks(request: Request) -> Response:
    ok, body = await json_body(request)
    try:
        spec = WebhookSpec.model_validate(body if ok else None)
    except ValidationError as exc:
        return _invalid(exc)
    configure_webhooks(request.app, spec.url, spec.secret, base_delay=spec.base_delay)
    return json_response({"url": spec.url}, 201)


async def clear_webhooks(request: Request) -> Response:
    cleared = request.app.state.webhooks is not None
    request.app.state.webhooks = None
    return json_response({"cleared": cleared})


def _return_or_none(request: Request) -> dict[str, Any] | None:
    world: World = request.app.state.world
    return world.get_return(request.path_params["return_id"])


async def update_label(request: Request) -> Response:
    """Move a return's label on (as the carrier would) and send `label.updated`."""
    item = _return_or_none(request)
    if item is None:
        return json_response(NO_RETURN, 404)
    ok, body = await json_body(request)
    try:
        spec = LabelSpec.model_validate(body if ok else None)
    except ValidationError as exc:
        return _invalid(exc)
    now = iso(utcnow())
    item["label_status"] = spec.label_status
    if spec.carrier is not None:
        item["carrier"] = spec.carrier
    if spec.tracking_number is not None:
        item["tracking_number"] = spec.tracking_number
    item["label_updated_at"] = item["updated_at"] = now
    emit(request.app, [label_event(request.app.state.world, item)])
    return json_response(item)


async def touch_return(request: Request) -> Response:
    """Bump a return's `updated_at` and send `return.updated`, changing nothing else."""
    item = _return_or_none(request)
    if item is None:
        return json_response(NO_RETURN, 404)
    item["updated_at"] = iso(utcnow())
    emit(request.app, [return_event(request.app.state.world, item, "return.updated")])
    return json_response(item)
