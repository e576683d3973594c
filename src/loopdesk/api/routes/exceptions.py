"""The exceptions ledger: every return-window exception decision, newest first."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from loopdesk import store as db
from loopdesk.api.deps import KeyName, StoreDep
from loopdesk.api.errors import ERROR_RESPONSES, ErrorBody
from loopdesk.api.inputs import Email, OrderName, PageBefore, PageLimit
from loopdesk.domain.shipments import order_key
from loopdesk.errors import NotFound

router = APIRouter(tags=["exceptions"], responses=ERROR_RESPONSES)

MAX_ID = db.MAX_ROW_ID
LedgerOutcome = Literal[
    "granted", "pending", "failed", "refused", "unknown", "within_window", "already_granted"
]


class CriterionOut(BaseModel):
    name: str
    held: bool
    detail: str


class ExceptionOut(BaseModel):
    id: int
    decidedAt: str
    emails: list[str]
    orderName: str
    outcome: str
    criteria: list[CriterionOut]
    reason: str | None
    vip: bool
    deliveredAt: str | None
    allowlistId: str | None
    conversationId: str | None
    key: str
    settledAt: str | None
    details: dict[str, Any]


class ExceptionPage(BaseModel):
    items: list[ExceptionOut]
    nextBefore: int | None


@router.get("/v1/exceptions", response_model=ExceptionPage)
async def list_exceptions(
    store: StoreDep,
    _key: KeyName,
    email: Annotated[Email | None, Query(description="A customer's address")] = None,
    order: Annotated[OrderName | None, Query(description="An order name (# optional)")] = None,
    outcome: Annotated[LedgerOutcome | None, Query()] = None,
    limit: PageLimit = 50,
    before: PageBefore = None,
) -> dict[str, Any]:
    async with store.reader() as session:
        rows = await db.list_exceptions(
            session,
            email=email,
            order_key=order_key(order) if order is not None else None,
            outcome=outcome,
            limit=limit,
            before_id=before,
        )
    next_before = rows[-1].id if len(rows) == limit else None
    return {"items": [r.to_json() for r in rows], "nextBefore": next_before}


@router.get(
    "/v1/exceptions/{entry_id}",
    response_model=ExceptionOut,
    responses={404: {"model": ErrorBody, "description": "No such ledger entry"}},
)
async def show_exception(
    store: StoreDep,
    _key: KeyName,
    entry_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The ledger entry's id")],
) -> dict[str, Any]:
    async with store.reader() as session:
        row = await db.get_exception(session, entry_id)
    if row is None:
        raise NotFound(f"no exceptions ledger entry {entry_id}", details={"id": entry_id})
    return row.to_json()
