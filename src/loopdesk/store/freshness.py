"""When each address was last fetched from Loop, and the orders seen then."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from loopdesk.domain.models import Order
from loopdesk.store.dialect import insert
from loopdesk.store.returns import normalize_emails
from loopdesk.store.schema import customer_fetches


async def mark_fetched(
    session: AsyncSession, emails: list[str], at: datetime, orders: list[Order]
) -> None:
    """Record a lookup of `emails` at `at`; the orders go under the first (primary)
    address, the only one a later lookup of the same set reads them from.

    A fetch older than the stored one changes nothing, so a slow lookup finishing
    late cannot make fresher data look stale or bring back older orders.
    """
    wanted = normalize_emails(emails)
    if not wanted:
        return
    primary, others = wanted[0], wanted[1:]
    orders_json = [order.to_json() for order in orders]
    rows = [{"email": primary, "fetched_at": at, "orders": orders_json}]
    rows += [{"email": email, "fetched_at": at, "orders": None} for email in others]
    for row in rows:
        statement = insert(session, customer_fetches).values(row)
        excluded = statement.excluded
        changes = {"fetched_at": excluded.fetched_at}
        if row["orders"] is not None:
            # Another set may use this address as its primary; keep its orders.
            changes["orders"] = excluded.orders
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[customer_fetches.c.email],
                set_=changes,
                where=excluded.fetched_at >= customer_fetches.c.fetched_at,
            )
        )


async def fetched_at(session: AsyncSession, emails: list[str]) -> datetime | None:
    """The oldest fetch time among `emails`: the set is only as fresh as its stalest
    address. None when any address was never fetched (or no address is given)."""
    wanted = normalize_emails(emails)
    if not wanted:
        return None
    query = select(customer_fetches.c.email, customer_fetches.c.fetched_at).where(
        customer_fetches.c.email.in_(wanted)
    )
    times: dict[str, datetime] = {row.email: row.fetched_at for row in await session.execute(query)}
    if len(times) < len(wanted):
        return None
    return min(times.values())


async def stored_orders(session: AsyncSession, emails: list[str]) -> list[Order]:
    """The orders last stored for this address set (under its primary address)."""
    wanted = normalize_emails(emails)
    if not wanted:
        return []
    query = select(customer_fetches.c.orders).where(customer_fetches.c.email == wanted[0])
    stored = (await session.execute(query)).scalar_one_or_none()
    return [Order.model_validate(item) for item in stored or []]


async def stored_orders_of(
    session: AsyncSession, primaries: Iterable[str]
) -> dict[str, list[Order]]:
    """`stored_orders` of many address sets at once, by their primary address."""
    wanted = normalize_emails(primaries)
    if not wanted:
        return {}
    query = select(customer_fetches.c.email, customer_fetches.c.orders).where(
        customer_fetches.c.email.in_(wanted)
    )
    return {
        row.email: [Order.model_validate(item) for item in row.orders or []]
        for row in await session.execute(query)
    }
