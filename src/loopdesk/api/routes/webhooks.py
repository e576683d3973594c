"""Loop's webhooks: verified, stored, answered, then applied (`customers.webhook_desk`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel

from loopdesk.api.deps import MetricsDep, SettingsDep, WebhooksDep
from loopdesk.api.errors import ERROR_RESPONSES
from loopdesk.errors import Unauthorized
from loopdesk.settings import WEBHOOK_SECRET_SETTING

router = APIRouter(tags=["webhooks"], responses=ERROR_RESPONSES)

NO_SECRET_MESSAGE = (
    f"webhooks are refused: {WEBHOOK_SECRET_SETTING} is not set "
    "(a real Loop token needs the secrets of its webhook subscriptions)"
)


class WebhookAnswer(BaseModel):
    """What Loop gets back: 2xx means "do not send this event again". `result`:
    `received` (stored, applied right after), `duplicate`, `failed` (stored, never
    applicable as sent), or with inline applying the outcome (`applied` ...)."""

    received: bool
    eventId: int
    result: str


@router.post("/webhooks/loop", summary="Loop webhook receiver", response_model=WebhookAnswer)
async def loop_webhook(
    request: Request,
    settings: SettingsDep,
    metrics: MetricsDep,
    desk: WebhooksDep,
    x_loop_signature: Annotated[str | None, Header()] = None,
) -> WebhookAnswer:
    secrets = settings.webhook_secrets
    if not secrets:
        # Never the public sandbox default with a real token: anyone could sign with it.
        metrics.webhooks.labels("refused").inc()
        raise Unauthorized(NO_SECRET_MESSAGE, details={"setting": WEBHOOK_SECRET_SETTING})
    body = await request.body()
    result = await desk.receive(body, x_loop_signature, secrets)
    metrics.webhooks.labels(result.result).inc()
    return WebhookAnswer(received=True, eventId=result.event_id, result=result.result)
