"""Actions on Loop, each audited (`actions.run`): links, allowlist, notes, return actions.

With an `Idempotency-Key` the runner raises `IdempotencyMismatch` (422) and
`IdempotencyConflict` (409), answered in the error shape by `api.errors`.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from loopdesk.actions.outcome import ActionOutcome
from loopdesk.actions.run import AllowlistType
from loopdesk.api.deps import CustomersDep, IdempotencyKey, KeyName, MetricsDep, Runner
from loopdesk.loop.returns import ReturnAction

router = APIRouter(tags=["actions"])


class ReturnLinkIn(BaseModel):
    orderName: str = Field(min_length=1, max_length=200)
    zip: str = Field(min_length=1, max_length=320, description="ZIP, email or phone")


class AllowlistIn(BaseModel):
    type: AllowlistType
    value: str = Field(min_length=1, max_length=500)


class NoteIn(BaseModel):
    content: str = Field(min_length=1, max_length=255)


def _answer(outcome: ActionOutcome, customers: CustomersDep, metrics: MetricsDep) -> JSONResponse:
    customers.invalidate()
    metrics.actions.labels(outcome.action, str(outcome.ok).lower()).inc()
    # Stripe's header: this is the answer kept under the Idempotency-Key, Loop not called.
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return JSONResponse(outcome.body, status_code=outcome.status, headers=headers)


@router.post("/v1/actions/return-link")
async def return_link(
    runner: Runner,
    customers: CustomersDep,
    metrics: MetricsDep,
    key: KeyName,
    body: ReturnLinkIn,
    idem: IdempotencyKey = None,
) -> JSONResponse:
    outcome = await runner.return_link(body.orderName, body.zip, key_name=key, idempotency_key=idem)
    return _answer(outcome, customers, metrics)


@router.post("/v1/actions/allowlist")
async def allowlist_add(
    runner: Runner,
    customers: CustomersDep,
    metrics: MetricsDep,
    key: KeyName,
    body: AllowlistIn,
    idem: IdempotencyKey = None,
) -> JSONResponse:
    outcome = await runner.allowlist_add(body.type, body.value, key_name=key, idempotency_key=idem)
    return _answer(outcome, customers, metrics)


@router.delete("/v1/actions/allowlist/{entry_id}")
async def allowlist_delete(
    runner: Runner,
    customers: CustomersDep,
    metrics: MetricsDep,
    key: KeyName,
    entry_id: str,
    idem: IdempotencyKey = None,
) -> JSONResponse:
    outcome = await runner.allowlist_delete(entry_id, key_name=key, idempotency_key=idem)
    return _answer(outcome, customers, metrics)


@router.post("/v1/returns/{return_id}/notes")
async def add_note(
    runner: Runner,
    customers: CustomersDep,
    metrics: MetricsDep,
    key: KeyName,
    return_id: str,
    body: NoteIn,
    idem: IdempotencyKey = None,
) -> JSONResponse:
    outcome = await runner.add_note(return_id, body.content, key_name=key, idempotency_key=idem)
    return _answer(outcome, customers, metrics)


@router.post("/v1/returns/{return_id}/{action}")
async def return_action(
    runner: Runner,
    customers: CustomersDep,
    metrics: MetricsDep,
    key: KeyName,
    return_id: str,
    action: ReturnAction,
    idem: IdempotencyKey = None,
) -> JSONResponse:
    outcome = await runner.return_action(return_id, action, key_name=key, idempotency_key=idem)
    return _answer(outcome, customers, metrics)
