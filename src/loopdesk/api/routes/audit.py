"""The audit trail of actions, newest first, paged by id."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from loopdesk import store as db
from loopdesk.api.deps import KeyName, StoreDep
from loopdesk.api.errors import ERROR_RESPONSES

router = APIRouter(tags=["audit"], responses=ERROR_RESPONSES)

MAX_ID = 2**63 - 1  # ids are 64-bit in both databases


def _aware(moment: datetime | None) -> datetime | None:
    """Query times without a zone read as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


class AuditItem(BaseModel):
    id: int
    action: str
    at: str
    key: str
    inputs: dict[str, Any]
    result: dict[str, Any]
    ok: bool


class AuditPage(BaseModel):
    items: list[AuditItem]
    nextBefore: int | None


@router.get("/v1/audit", response_model=AuditPage)
async def audit(
    store: StoreDep,
    _key: KeyName,
    action: str | None = None,
    key: str | None = None,
    since: Annotated[datetime | None, Query(description="At or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="Before (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[
        int | None,
        Query(ge=1, le=MAX_ID, description="Page: items older than this id"),
    ] = None,
) -> dict[str, Any]:
    async with store.session() as session:
        rows = await db.list_audit(
            session,
            action=action,
            key_name=key,
            since=_aware(since),
            until=_aware(until),
            limit=limit,
            before_id=before,
        )
    items = [
        {
            "id": row.id,
            "action": row.action,
            "at": row.at.isoformat(),
            "key": row.key_name,
            "inputs": row.inputs,
            "result": row.result,
            "ok": row.ok,
        }
        for row in rows
    ]
    next_before = rows[-1].id if len(rows) == limit else None
    return {"items": items, "nextBefore": next_before}
