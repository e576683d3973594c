"""Customer lookups: the sidebar's returns and orders for a profile's addresses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from loopdesk.api.deps import CustomersDep, KeyName, MetricsDep

router = APIRouter(prefix="/v1/customers", tags=["customers"])


class CustomerIn(BaseModel):
    """A Gladly-style customer profile (only the addresses matter to a lookup)."""

    emails: list[str] = Field(default_factory=list)
    emailAddresses: list[str] = Field(default_factory=list)
    primaryEmailAddress: str | None = None


async def _lookup(
    request: Request, customers: CustomersDep, metrics: MetricsDep, emails: list[str]
) -> dict[str, Any]:
    fresh = "no-cache" in request.headers.get("cache-control", "").lower()
    view = await customers.lookup(emails, fresh=fresh)
    metrics.lookups.labels("stale" if view.meta.stale else view.meta.source).inc()
    result: dict[str, Any] = view.to_json()
    return result


@router.get("/lookup", summary="A customer's returns and orders")
async def customer_lookup(
    request: Request,
    customers: CustomersDep,
    metrics: MetricsDep,
    _key: KeyName,
    email: Annotated[list[str], Query(min_length=1, description="Profile addresses")],
) -> dict[str, Any]:
    return await _lookup(request, customers, metrics, email)


@router.post("/lookup", summary="Lookup by customer profile")
async def customer_lookup_profile(
    request: Request,
    customers: CustomersDep,
    metrics: MetricsDep,
    _key: KeyName,
    customer: CustomerIn,
) -> dict[str, Any]:
    emails = [customer.primaryEmailAddress or "", *customer.emailAddresses, *customer.emails]
    return await _lookup(request, customers, metrics, emails)
