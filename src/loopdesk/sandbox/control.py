"""`/_sandbox/*`: the sandbox's own control routes (no auth, never faulted or logged)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from loopdesk.sandbox.faults import FaultController
from loopdesk.sandbox.responses import json_body, json_response
from loopdesk.sandbox.world import World


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
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        return json_response({"message": f"{where}: {first['msg']}"}, 422)
    _faults(request).add(**spec.model_dump())
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
