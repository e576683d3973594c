"""Routing: a decision for a customer now, and the decisions recorded so far."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from loopdesk import store as db
from loopdesk.api.deps import CustomersDep, KeyName, StoreDep
from loopdesk.api.errors import ERROR_RESPONSES
from loopdesk.api.inputs import FilterText, LongFilterText
from loopdesk.errors import InvalidInput
from loopdesk.routing.service import RoutingConfig, route_customer

router = APIRouter(prefix="/v1/routing", tags=["routing"], responses=ERROR_RESPONSES)

MAX_ID = db.MAX_ROW_ID
WORD = r"^[A-Za-z0-9_-]*$"
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
FactValue = bool | int | str


async def _routing(request: Request) -> RoutingConfig:
    config: RoutingConfig = request.app.state.routing
    return config


RoutingDep = Annotated[RoutingConfig, Depends(_routing)]


class CustomerIn(BaseModel):
    """The help desk's customer, as in `POST /v1/guide/messages`."""

    emails: list[Annotated[str, Field(max_length=320, pattern=PRINTABLE)]] = Field(
        min_length=1, max_length=20
    )
    phones: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=20)
    name: str = Field(default="", max_length=500)
    attributes: dict[str, Any] = Field(default_factory=dict, max_length=200)


class DecideIn(BaseModel):
    customer: CustomerIn
    channel: str = Field(default="", max_length=32, pattern=WORD, description="chat, email, sms")
    text: str | None = Field(
        default=None,
        max_length=20_000,
        description="The customer's message (not stored); its intent goes in `intent`",
    )
    intent: str = Field(
        default="",
        max_length=32,
        pattern=WORD,
        description="The message's intent when already known (`loopdesk guide classify`)",
    )


class TraceStepOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    rule: str
    position: int
    condition: str
    result: Literal["matched", "no match", "not evaluated", "error"]
    reads: dict[str, FactValue]
    continue_: bool = Field(alias="continue")
    error: str | None = None


class DecisionOut(BaseModel):
    """As `loopdesk route --json`."""

    queue: str
    priority: int
    rule: str
    tags: list[str]
    note: str
    facts: dict[str, FactValue]
    trace: list[TraceStepOut]
    id: int
    at: datetime
    emails: list[str]
    channel: str
    intent: str
    stale: bool = Field(description="The facts come from stored data: Loop could not answer")


class RecordedDecision(BaseModel):
    id: int
    at: datetime
    emails: list[str]
    channel: str
    intent: str
    queue: str
    priority: int
    rule: str
    tags: list[str]
    facts: dict[str, FactValue]


class DecisionsPage(BaseModel):
    items: list[RecordedDecision]
    nextBefore: int | None = Field(description="Pass as `before` for the next page")


def _utc(moment: datetime | None, field: str) -> datetime | None:
    """A query time in UTC (without a zone it reads as UTC); out of range is a 422."""
    if moment is None:
        return None
    try:
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"{field}: out of range", details={"field": field}) from None


@router.post(
    "/decide",
    response_model=DecisionOut,
    response_model_by_alias=True,
    summary="Route a customer now: queue, priority, the rule and why",
)
async def decide(
    body: DecideIn,
    config: RoutingDep,
    customers: CustomersDep,
    store: StoreDep,
    _key: KeyName,
) -> dict[str, Any]:
    routed = await route_customer(
        config,
        customers,
        store,
        body.customer.emails,
        attributes=body.customer.attributes,
        channel=body.channel.lower(),
        intent=body.intent.lower(),
    )
    return routed.to_json()


@router.get("/decisions", response_model=DecisionsPage, summary="Recorded decisions, newest first")
async def decisions(
    store: StoreDep,
    _key: KeyName,
    queue: Annotated[FilterText | None, Query()] = None,
    rule: Annotated[LongFilterText | None, Query()] = None,
    since: Annotated[datetime | None, Query(description="At or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="Before (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Page: decisions older than this id")
    ] = None,
) -> DecisionsPage:
    async with store.reader() as session:
        rows = await db.list_decisions(
            session,
            queue=queue,
            rule=rule,
            since=_utc(since, "since"),
            until=_utc(until, "until"),
            before_id=before,
            limit=limit,
        )
    items = [
        RecordedDecision(
            id=row.id,
            at=row.at,
            emails=row.customer_emails,
            channel=row.channel,
            intent=row.intent,
            queue=row.queue,
            priority=row.priority,
            rule=row.rule,
            tags=row.tags,
            facts=row.facts,
        )
        for row in rows
    ]
    return DecisionsPage(items=items, nextBefore=rows[-1].id if len(rows) == limit else None)
