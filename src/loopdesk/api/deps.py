"""Typed dependencies: what a route needs, read from the app once built in `create_app`.

Each is `async def`: FastAPI runs a plain `def` dependency in a worker thread, a hop
per dependency per request that costs more than the lookup it serves."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from loopdesk import store as db
from loopdesk.actions.run import ActionRunner
from loopdesk.api.auth import require_api_key
from loopdesk.api.metrics import Metrics
from loopdesk.customers.service import CustomerService
from loopdesk.customers.webhook_desk import WebhookDesk
from loopdesk.customers.webhooks import ReturnReads
from loopdesk.settings import Settings


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _store(request: Request) -> db.Store:
    store: db.Store = request.app.state.store
    return store


async def _customers(request: Request) -> CustomerService:
    customers: CustomerService = request.app.state.customers
    return customers


async def _runner(request: Request) -> ActionRunner:
    runner: ActionRunner = request.app.state.actions
    return runner


async def _webhook_reads(request: Request) -> ReturnReads:
    reads: ReturnReads = request.app.state.webhook_reads
    return reads


async def _webhooks(request: Request) -> WebhookDesk:
    desk: WebhookDesk = request.app.state.webhooks
    return desk


async def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[Settings, Depends(_settings)]
StoreDep = Annotated[db.Store, Depends(_store)]
CustomersDep = Annotated[CustomerService, Depends(_customers)]
Runner = Annotated[ActionRunner, Depends(_runner)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
WebhookReadsDep = Annotated[ReturnReads, Depends(_webhook_reads)]
WebhooksDep = Annotated[WebhookDesk, Depends(_webhooks)]
KeyName = Annotated[str, Depends(require_api_key)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
