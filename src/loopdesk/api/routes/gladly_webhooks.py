"""Gladly's webhooks: checked (Basic auth and/or a secret header), stored, then applied
(see `gladly.reroute`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel

from loopdesk.api.errors import ERROR_RESPONSES, ErrorBody
from loopdesk.errors import NotFound, Unauthorized
from loopdesk.gladly.client import SETTINGS
from loopdesk.gladly.reroute import SECRET_HEADER, GladlyRerouter

router = APIRouter(
    tags=["webhooks"],
    responses={
        **ERROR_RESPONSES,
        404: {"model": ErrorBody, "description": "No Gladly API is configured"},
        503: {"model": ErrorBody, "description": "The event could not be stored: send it again"},
    },
)

NOT_CONFIGURED = f"Gladly is not configured: set {', '.join(SETTINGS)}"
REFUSED = (
    "missing or invalid Gladly webhook credentials (Basic auth and/or the "
    f"{SECRET_HEADER} header, as configured)"
)
NO_CREDENTIALS = (
    "Gladly webhooks are refused: set LOOPDESK_GLADLY_WEBHOOK_USER and _PASSWORD, "
    "and/or LOOPDESK_GLADLY_WEBHOOK_SECRET"
)


class GladlyWebhookAnswer(BaseModel):
    """What Gladly gets back: a 2xx means "do not send this event again". `result`:
    `pong` (PING), `ignored` (a type re-routing does not use), `duplicate` (stored
    before), `moved`, `unchanged`, `unmapped` (the queue has no inbox), `closed`,
    `no_email`, `failed` (stored with the reason), `deferred` (tried again later) or
    `queued` (still being applied)."""

    received: bool
    type: str
    eventId: int | None
    result: str


@router.post(
    "/webhooks/gladly", summary="Gladly webhook receiver", response_model=GladlyWebhookAnswer
)
async def gladly_webhook(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    secret: Annotated[str | None, Header(alias=SECRET_HEADER, include_in_schema=False)] = None,
) -> GladlyWebhookAnswer:
    gladly: GladlyRerouter | None = request.app.state.services.gladly
    if gladly is None:
        raise NotFound(NOT_CONFIGURED, details={"settings": list(SETTINGS)})
    auth = gladly.config.auth
    if not auth.configured:
        raise Unauthorized(NO_CREDENTIALS)
    if not auth.accepts(authorization, secret):
        raise Unauthorized(REFUSED)
    received = await gladly.receive(await request.body())
    return GladlyWebhookAnswer(
        received=True,
        type=received.type,
        eventId=received.event_id,
        result=received.result,
    )
