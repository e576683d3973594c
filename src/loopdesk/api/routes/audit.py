"""The audit trail of actions, newest first, paged by id."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AfterValidator, BaseModel

from loopdesk import store as db
from loopdesk.api.deps import KeyName, StoreDep
from loopdesk.api.errors import ERROR_RESPONSES
from loopdesk.api.inputs import FilterText, LongFilterText, PageBefore, PageLimit

router = APIRouter(tags=["audit"], responses=ERROR_RESPONSES)


def _utc(moment: datetime) -> datetime:
    """The moment in UTC (without a zone: read as UTC); out of range is a 422, as
    `0001-01-01T00:00:00+14:00` and `9999-12-31T23:59:59-23:59` have no UTC year."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range once moved to UTC") from None


UTCMoment = Annotated[datetime, AfterValidator(_utc)]


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
    action: Annotated[FilterText | None, Query()] = None,
    key: Annotated[LongFilterText | None, Query()] = None,
    since: Annotated[UTCMoment | None, Query(description="At or after (ISO 8601)")] = None,
    until: Annotated[UTCMoment | None, Query(description="Before (ISO 8601)")] = None,
    limit: PageLimit = 50,
    before: PageBefore = None,
) -> dict[str, Any]:
    async with store.session() as session:
        rows = await db.list_audit(
            session,
            action=action,
            key_name=key,
            since=since,
            until=until,
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
