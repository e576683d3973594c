"""Loop's webhooks: verified, stored, then applied (see `customers.webhooks`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request

from loopdesk.api.deps import CustomersDep, MetricsDep, SettingsDep, StoreDep
from loopdesk.customers.webhooks import ingest

router = APIRouter(tags=["webhooks"])


@router.post("/webhooks/loop", summary="Loop webhook receiver")
async def loop_webhook(
    request: Request,
    settings: SettingsDep,
    store: StoreDep,
    customers: CustomersDep,
    metrics: MetricsDep,
    x_loop_signature: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    body = await request.body()
    secret = settings.loop_webhook_secret.get_secret_value()
    result = await ingest(store, body, x_loop_signature, secret)
    if result.result == "applied":
        customers.invalidate()
    metrics.webhooks.labels(result.result).inc()
    return {"received": True, "eventId": result.event_id, "result": result.result}
