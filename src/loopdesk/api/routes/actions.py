"""Actions on Loop, each audited (`actions.run`): links, allowlist, notes, return actions.

With an `Idempotency-Key` the runner raises `IdempotencyMismatch` (422) and
`IdempotencyConflict` (409), answered in the error shape by `api.errors`.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from loopdesk.actions.outcome import ActionOutcome
from loopdesk.actions.run import AllowlistType
from loopdesk.api.deps import CustomersDep, IdempotencyKey, KeyName, MetricsDep, Runner
from loopdesk.api.errors import ACTION_ERROR_RESPONSES
from loopdesk.api.inputs import AllowlistValue, LoopId, NoteText, OrderName, ZipOrContact
from loopdesk.loop.returns import ReturnAction

router = APIRouter(tags=["actions"], responses=ACTION_ERROR_RESPONSES)
# Ids are captured with `:path` so that one holding a slash (`1%2F..`) reaches the
# `LoopId` check and gets its 422, like any other id that is not a Loop id.


class ReturnLinkIn(BaseModel):
    orderName: OrderName
    zip: ZipOrContact


class AllowlistIn(BaseModel):
    type: AllowlistType
    value: AllowlistValue


class NoteIn(BaseModel):
    content: NoteText


# What each action answers when Loop agreed (a replay under an Idempotency-Key
# answers the first outcome, in the same shape).
class ReturnLinkOut(BaseModel):
    url: str


class AllowlistOut(BaseModel):
    id: str
    type: str
    value: str


class AllowlistDeletedOut(BaseModel):
    id: str
    deleted: bool


class NoteAddedOut(BaseModel):
    returnId: str
    content: str
    added: bool


class ReturnActionOut(BaseModel):
    returnId: str
    action: str
    accepted: bool


def _answer(outcome: ActionOutcome, customers: CustomersDep, metrics: MetricsDep) -> JSONResponse:
    customers.invalidate()
    metrics.actions.labels(outcome.action, str(outcome.ok).lower()).inc()
    # Stripe's header: this is the answer kept under the Idempotency-Key, Loop not called.
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return JSONResponse(outcome.body, status_code=outcome.status, headers=headers)


@router.post("/v1/actions/return-link", response_model=ReturnLinkOut)
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


@router.post("/v1/actions/allowlist", response_model=AllowlistOut)
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


@router.delete("/v1/actions/allowlist/{entry_id:path}", response_model=AllowlistDeletedOut)
async def allowlist_delete(
    runner: Runner,
    customers: CustomersDep,
    metrics: MetricsDep,
    key: KeyName,
    entry_id: LoopId,
    idem: IdempotencyKey = None,
) -> JSONResponse:
    outcome = await runner.allowlist_delete(entry_id, key_name=key, idempotency_key=idem)
    return _answer(outcome, customers, metrics)


@router.post("/v1/returns/{return_id:path}/notes", response_model=NoteAddedOut)
async def add_note(
    runner: Runner,
    customers: CustomersDep,
    metrics: MetricsDep,
    key: KeyName,
    return_id: LoopId,
    body: NoteIn,
    idem: IdempotencyKey = None,
) -> JSONResponse:
    outcome = await runner.add_note(return_id, body.content, key_name=key, idempotency_key=idem)
    return _answer(outcome, customers, metrics)


@router.post("/v1/returns/{return_id:path}/{action}", response_model=ReturnActionOut)
async def return_action(
    runner: Runner,
    customers: CustomersDep,
    metrics: MetricsDep,
    key: KeyName,
    return_id: LoopId,
    action: ReturnAction,
    idem: IdempotencyKey = None,
) -> JSONResponse:
    outcome = await runner.return_action(return_id, action, key_name=key, idempotency_key=idem)
    return _answer(outcome, customers, metrics)
