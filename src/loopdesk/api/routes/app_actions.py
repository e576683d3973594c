"""What a help desk's assistant asks on the customer's behalf (Gladly's Sidekick and
Guides through the exported App Platform app, `gladly.export`): where the returns stand
and when the refund lands, and a return-window exception decided by the policy.

A return link is `POST /v1/actions/return-link` (`routes.actions`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from loopdesk.api.deps import CustomersDep, KeyName
from loopdesk.api.errors import ACTION_ERROR_RESPONSES, ERROR_RESPONSES
from loopdesk.api.inputs import MAX_EMAILS_PER_REQUEST, Email, LongFilterText, OrderName
from loopdesk.domain.facts import Customer, facts
from loopdesk.domain.models import LoopReturn
from loopdesk.domain.shipments import order_key
from loopdesk.domain.timeline import ProcessingTimes, estimate, return_stage
from loopdesk.policy.file import Policy
from loopdesk.policy.grant import ExceptionDesk, ExceptionResult

router = APIRouter(tags=["assistant"])


async def _policy(request: Request) -> Policy:
    policy: Policy = request.app.state.policy
    return policy


async def _desk(request: Request) -> ExceptionDesk:
    desk: ExceptionDesk = request.app.state.exceptions
    return desk


PolicyDep = Annotated[Policy, Depends(_policy)]
DeskDep = Annotated[ExceptionDesk, Depends(_desk)]


# --- return status ---------------------------------------------------------------


class StepOut(BaseModel):
    name: str = Field(description="The stage: in_transit_to_warehouse, refund_to_account ...")
    days: int = Field(description="Its business days (the policy file's `[processing]`)")
    start: str
    end: str
    late: bool = Field(description="It should have ended before today: it ends today")


class EstimateOut(BaseModel):
    landsOn: str = Field(description="The date the refund, credit or exchange should land")
    kind: str = Field(description="refund, credit or exchange")
    stage: str
    since: str = Field(description="The date the count starts from")
    sinceField: str = Field(description="Which of the return's dates that is")
    late: bool = Field(description="A stage already took longer than the policy allows")
    steps: list[StepOut]


class ReturnStatusOut(BaseModel):
    id: str
    orderName: str
    state: str
    stage: str = Field(description="Where the return stands (README: When the refund lands)")
    outcome: str
    statusPageUrl: str
    carrier: str
    trackingNumber: str
    labelStatus: str
    updatedAt: str
    estimate: EstimateOut | None = Field(
        description="None once the return is done, cancelled or expired"
    )


class ReturnsStatusOut(BaseModel):
    returns: list[ReturnStatusOut]
    stale: bool = Field(description="Loop could not be reached: the store's data")


def return_status(ret: LoopReturn, processing: ProcessingTimes, now: datetime) -> dict[str, Any]:
    landing = estimate(ret, processing, now)
    return {
        "id": ret.id,
        "orderName": ret.order.name,
        "state": ret.state,
        "stage": return_stage(ret).value,
        "outcome": ret.outcome,
        "statusPageUrl": ret.shipping.statusPageUrl,
        "carrier": ret.shipping.carrier,
        "trackingNumber": ret.shipping.trackingNumber,
        "labelStatus": ret.shipping.labelStatus,
        "updatedAt": ret.updatedAt,
        "estimate": landing.to_json() if landing is not None else None,
    }


@router.get(
    "/v1/returns/status",
    response_model=ReturnsStatusOut,
    responses=ERROR_RESPONSES,
    summary="Where each of a customer's returns stands and when its refund lands",
)
async def returns_status(
    customers: CustomersDep,
    policy: PolicyDep,
    _key: KeyName,
    email: Annotated[
        list[Email],
        Query(min_length=1, max_length=MAX_EMAILS_PER_REQUEST, description="Profile addresses"),
    ],
    order: Annotated[
        OrderName | None, Query(description="Only this order's returns (# optional)")
    ] = None,
) -> dict[str, Any]:
    view = await customers.lookup(list(email))
    now = datetime.now(UTC)
    returns = view.returns
    if order is not None:
        returns = [r for r in returns if order_key(r.order.name) == order_key(order)]
    return {
        "returns": [return_status(r, policy.processing, now) for r in returns],
        "stale": view.meta.stale,
    }


# --- exception requests ------------------------------------------------------------


class ExceptionRequestIn(BaseModel):
    emails: list[Email] = Field(min_length=1, max_length=20, description="The customer's")
    orderName: OrderName
    vip: bool | None = Field(
        default=None,
        description="true: the customer is VIP. Otherwise `attributes` and the addresses "
        "decide, as the policy file's `[vip]` says",
    )
    attributes: dict[str, Any] = Field(
        default_factory=dict,
        max_length=200,
        description='The help desk\'s customer attributes (`vip`, `tags`: ["VIP"] ...)',
    )
    # Printable text as wide as the ledger's column (no NUL nor lone surrogate).
    conversationId: LongFilterText | None = Field(
        default=None, description="The help desk's conversation, kept in the ledger"
    )


class CriterionOut(BaseModel):
    name: str
    held: bool
    detail: str


class ExceptionRequestOut(BaseModel):
    outcome: str = Field(
        description="granted, already_granted, within_window (no exception needed), "
        "refused, unknown (a person decides), pending or failed (Loop's allowlist)"
    )
    granted: bool = Field(description="The order is allowlisted: the return link works")
    orderName: str
    reason: str = Field(description="The policy's refusal in the merchant's words, else empty")
    why: str = Field(description="One sentence: the reason, or the criteria that held")
    criteria: list[CriterionOut]
    vip: bool
    allowlistId: str | None
    entryId: int | None = Field(description="The exceptions ledger entry")
    deliveredAt: str | None
    windowClosedOn: str | None
    graceEndsOn: str | None
    decidedAt: str


def exception_answer(result: ExceptionResult) -> dict[str, Any]:
    """The desk's result as the assistant reads it: one outcome, and why."""
    decision = result.decision
    if result.pending:
        outcome = "pending"
    elif result.upstream_failed:
        outcome = "failed"
    elif result.already_granted:
        outcome = "already_granted"
    elif result.granted:
        outcome = "granted"
    else:
        outcome = decision.outcome
    if decision.reason:
        why = decision.reason
    elif outcome in ("pending", "failed"):
        why = "the policy allows the exception, but Loop's allowlist entry could not be confirmed"
    else:
        why = "; ".join(c.detail for c in decision.criteria if c.held)
    body = decision.to_json()
    return {
        "outcome": outcome,
        "granted": result.granted,
        "orderName": decision.order_name,
        "reason": decision.reason,
        "why": why,
        "criteria": body["criteria"],
        "vip": decision.vip,
        "allowlistId": result.allowlist_id,
        "entryId": result.entry_id,
        "deliveredAt": body["deliveredAt"],
        "windowClosedOn": body["windowClosedOn"],
        "graceEndsOn": body["graceEndsOn"],
        "decidedAt": body["decidedAt"],
    }


@router.post(
    "/v1/exceptions/requests",
    response_model=ExceptionRequestOut,
    responses=ACTION_ERROR_RESPONSES,
    summary="Ask for a return-window exception: the policy decides, the answer says why",
)
async def request_exception(
    body: ExceptionRequestIn, desk: DeskDep, policy: PolicyDep, key: KeyName
) -> dict[str, Any]:
    now = datetime.now(UTC)
    customer = Customer(emails=tuple(body.emails), attributes=body.attributes)
    vip = body.vip is True or bool(facts([], [], now, policy.facts, customer=customer)["vip"])
    result = await desk.request(
        emails=list(body.emails),
        vip=vip,
        order_name=body.orderName,
        conversation_id=body.conversationId,
        key_name=key,
        now=now,
    )
    return exception_answer(result)
