"""Customer lookups: the sidebar's returns and orders for a profile's addresses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, BeforeValidator, Field

from loopdesk.api.deps import CustomersDep, KeyName, MetricsDep
from loopdesk.api.errors import ERROR_RESPONSES
from loopdesk.api.inputs import MAX_EMAILS_PER_REQUEST, Email
from loopdesk.customers.view import CustomerView

router = APIRouter(prefix="/v1/customers", tags=["customers"], responses=ERROR_RESPONSES)


def _blank_is_absent(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


Emails = Annotated[list[Email], Field(max_length=MAX_EMAILS_PER_REQUEST)]


class CustomerIn(BaseModel):
    """A Gladly-style customer profile (only the addresses matter to a lookup)."""

    emails: Emails = Field(default_factory=list)
    emailAddresses: Emails = Field(default_factory=list)
    primaryEmailAddress: Annotated[Email | None, BeforeValidator(_blank_is_absent)] = None


async def _lookup(
    request: Request, customers: CustomersDep, metrics: MetricsDep, emails: list[str]
) -> Response:
    fresh = "no-cache" in request.headers.get("cache-control", "").lower()
    answer = await customers.answer(emails, fresh=fresh)
    meta = answer.view.meta
    metrics.lookups.labels("stale" if meta.stale else meta.source).inc()
    # The contract's JSON, encoded once per held view (not validated again against the
    # model): callers sharing a view share its bytes.
    return Response(answer.body(), media_type="application/json")


LOOKUP_DOC = (
    "The same object as `loopdesk lookup --json`. `Cache-Control: no-cache` fetches from "
    "Loop now. Addresses past `LOOPDESK_LOOKUP_MAX_EMAILS` are not looked up: "
    "`meta.droppedEmails` lists them."
)


@router.get(
    "/lookup",
    summary="A customer's returns and orders",
    description=LOOKUP_DOC,
    response_model=CustomerView,
)
async def customer_lookup(
    request: Request,
    customers: CustomersDep,
    metrics: MetricsDep,
    _key: KeyName,
    email: Annotated[
        list[Email],
        Query(min_length=1, max_length=MAX_EMAILS_PER_REQUEST, description="Profile addresses"),
    ],
) -> Response:
    return await _lookup(request, customers, metrics, email)


@router.post(
    "/lookup",
    summary="Lookup by customer profile",
    description=LOOKUP_DOC,
    response_model=CustomerView,
)
async def customer_lookup_profile(
    request: Request,
    customers: CustomersDep,
    metrics: MetricsDep,
    _key: KeyName,
    customer: CustomerIn,
) -> Response:
    emails = [customer.primaryEmailAddress or "", *customer.emailAddresses, *customer.emails]
    return await _lookup(request, customers, metrics, emails)
