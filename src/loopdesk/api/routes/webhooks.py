"""Loop's webhooks: verified, stored, then applied (see `customers.webhooks`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel

from loopdesk.api.deps import CustomersDep, MetricsDep, SettingsDep, StoreDep
from loopdesk.api.errors import ERROR_RESPONSES
from loopdesk.customers.webhooks import ingest

router = APIRouter(tags=["webhooks"], responses=ERROR_RESPONSES)


class WebhookAnswer(BaseModel):
    """What Loop gets back: 2xx means "do not send this event again"."""

    received: bool
    eventId: int
    result: str


@router.post("/webhooks/loop", summary="Loop webhook receiver", response_model=WebhookAnswer)
async def loop_webhook(
    request: Request,
    settings: SettingsDep,
    store: StoreDep,
    customers: CustomersDep,
    metrics: MetricsDep,
    x_loop_signature: Annotated[str | None, Header()] = None,
) -> WebhookAnswer:
    body = await request.body()
    secret = settings.loop_webhook_secret.get_secret_value()
    result = await ingest(store, body, x_loop_signature, secret)
    if result.result == "applied":
        customers.invalidate()
    metrics.webhooks.labels(result.result).inc()
    return WebhookAnswer(received=True, eventId=result.event_id, result=result.result)
