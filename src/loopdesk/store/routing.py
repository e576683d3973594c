"""Routing decisions: recorded when made, listed newest first, counted for a report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from loopdesk.store.dialect import insert
from loopdesk.store.returns import normalize_emails
from loopdesk.store.schema import routing_decisions

MAX_PAGE = 500


@dataclass(frozen=True)
class DecisionRow:
    id: int
    at: datetime
    customer_emails: list[str]
    channel: str
    intent: str
    facts: dict[str, Any]
    queue: str
    priority: int
    tags: list[str]
    rule: str


async def record_decision(
    session: AsyncSession,
    *,
    at: datetime,
    emails: Sequence[str],
    channel: str,
    intent: str,
    facts: dict[str, Any],
    queue: str,
    priority: int,
    tags: Sequence[str],
    rule: str,
) -> int:
    """Append a decision; its id."""
    values = {
        "at": at,
        "customer_emails": normalize_emails(emails),
        "channel": channel,
        "intent": intent,
        "facts": facts,
        "queue": queue,
        "priority": priority,
        "tags": list(tags),
        "rule": rule,
    }
    statement = insert(session, routing_decisions).values(values)
    result = await session.execute(statement.returning(routing_decisions.c.id))
    return int(result.scalar_one())


async def list_decisions(
    session: AsyncSession,
    *,
    queue: str | None = None,
    rule: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[DecisionRow]:
    """Newest first; `since` inclusive, `until` exclusive. For the next page pass the
    last row's id as `before_id` (ids only grow, so pages never overlap)."""
    query = select(routing_decisions)
    if queue is not None:
        query = query.where(routing_decisions.c.queue == queue)
    if rule is not None:
        query = query.where(routing_decisions.c.rule == rule)
    if since is not None:
        query = query.where(routing_decisions.c.at >= since)
    if until is not None:
        query = query.where(routing_decisions.c.at < until)
    if before_id is not None:
        query = query.where(routing_decisions.c.id < before_id)
    query = query.order_by(routing_decisions.c.id.desc()).limit(min(max(limit, 0), MAX_PAGE))
    return [_row(row) for row in await session.execute(query)]


async def decision_counts(
    session: AsyncSession, *, since: datetime | None = None, until: datetime | None = None
) -> list[tuple[str, str, int]]:
    """(queue, rule, count) of the decisions in the window, most frequent first."""
    count = func.count().label("n")
    query = select(routing_decisions.c.queue, routing_decisions.c.rule, count)
    if since is not None:
        query = query.where(routing_decisions.c.at >= since)
    if until is not None:
        query = query.where(routing_decisions.c.at < until)
    query = query.group_by(routing_decisions.c.queue, routing_decisions.c.rule).order_by(
        count.desc(), routing_decisions.c.queue, routing_decisions.c.rule
    )
    return [(row.queue, row.rule, int(row.n)) for row in await session.execute(query)]


def _row(row: Row[Any]) -> DecisionRow:
    return DecisionRow(
        id=row.id,
        at=row.at,
        customer_emails=list(row.customer_emails),
        channel=row.channel,
        intent=row.intent,
        facts=dict(row.facts),
        queue=row.queue,
        priority=int(row.priority),
        tags=list(row.tags),
        rule=row.rule,
    )
