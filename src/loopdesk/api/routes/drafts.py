"""Creating a whole return step by step (Loop's Draft Returns API, `loopdesk.drafts`).

Each step is one route; the draft's `nextSteps` (Loop's `links`) say which may follow,
and a step they do not offer is 409 `draft_step_not_allowed` without calling Loop.
Every write is audited and takes an optional `Idempotency-Key`. Loop's 422 is answered
as `loop_validation_error` with Loop's `errors` (their `code` kept) in `details`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, Field, StrictBool

from loopdesk.api.deps import CustomersDep, IdempotencyKey, KeyName, MetricsDep
from loopdesk.api.errors import ACTION_ERROR_RESPONSES, ErrorBody
from loopdesk.api.inputs import LongFilterText, LoopId, OrderName, ZipOrContact
from loopdesk.domain.drafts import INT64_MAX, input_id
from loopdesk.drafts import ACTIONS, DraftDesk, DraftResult
from loopdesk.errors import InvalidInput

# A customer page asks for its orders' drafts at once; a profile has few orders.
MAX_ORDER_FILTER = 50

router = APIRouter(
    tags=["drafts"],
    responses={
        **ACTION_ERROR_RESPONSES,
        403: {"model": ErrorBody, "description": "Creating returns is off for this shop"},
        409: {
            "model": ErrorBody,
            "description": "The draft's links do not offer this step now (`details.nextSteps`), "
            "or a request with the same Idempotency-Key is in progress",
        },
    },
)


async def _desk(request: Request) -> DraftDesk:
    desk: DraftDesk = request.app.state.drafts
    return desk


DeskDep = Annotated[DraftDesk, Depends(_desk)]


def _body_id(value: str | int) -> str:
    try:
        return str(input_id(value, "id"))
    except InvalidInput as exc:
        raise ValueError(exc.message.removeprefix("id ")) from None


# An id in a JSON body: digits as text (a GraphQL ID) or a JSON integer, 64-bit.
BodyId = Annotated[
    Annotated[str, Field(pattern=r"^[0-9]{1,19}$", examples=["7101001"])]
    | Annotated[int, Field(strict=True, ge=1, le=INT64_MAX)],
    AfterValidator(_body_id),
]


# --- inputs --------------------------------------------------------------------------


class DraftStartIn(BaseModel):
    orderName: OrderName
    secondaryInput: ZipOrContact = Field(
        description="The order's ZIP, or the customer's email or phone (the shop's Loop setting)"
    )
    isGift: StrictBool = Field(default=False, description="A gift return: store credit only")
    conversationId: LongFilterText | None = Field(
        default=None, description="The help desk's conversation the draft belongs to"
    )


class ItemIn(BaseModel):
    orderLineItemId: BodyId


class ReasonIn(BaseModel):
    reasonId: BodyId = Field(description="One of the draft's `reasons`")


class TypeIn(BaseModel):
    returnType: Literal["credit", "exchange"]


class ExchangeIn(BaseModel):
    variantId: BodyId = Field(description="One of the item's `exchangeOptions` variants")


class CreditTypeIn(BaseModel):
    creditType: Literal["refund", "gift"] = Field(
        description="refund: to the original payment; gift: store credit"
    )


class ReturnMethodIn(BaseModel):
    returnMethodId: BodyId = Field(description="One of the draft's `returnMethodOptions`")


# --- the view --------------------------------------------------------------------------


class MoneyOut(BaseModel):
    amount: int = Field(description="Minor units (800 = 8.00)")
    currency: str | None


class LineItemOut(BaseModel):
    id: str | None
    title: str | None
    variantTitle: str | None
    price: int = Field(description="Minor units")
    image: str | None
    eligible: bool
    ineligibilityCode: str | None = Field(description="Why it cannot be returned: final-sale ...")


class ReturningItemOut(BaseModel):
    id: str
    orderLineItemId: str | None
    returnType: str | None
    reasonId: str | None
    exchangeVariantId: str | None


class ReasonOut(BaseModel):
    id: str
    name: str | None


class OptionOut(BaseModel):
    name: str
    value: str


class ProductOptionOut(BaseModel):
    name: str
    values: list[str]


class VariantOut(BaseModel):
    variantId: str | None
    title: str | None
    variantTitle: str | None
    price: int | None = Field(description="Minor units")
    currency: str | None
    isAvailable: bool
    options: list[OptionOut]
    image: str | None


class ExchangeOptionsOut(BaseModel):
    returningItemId: str
    productOptions: list[ProductOptionOut]
    variants: list[VariantOut]


class ReturnMethodOut(BaseModel):
    id: str | None
    name: str | None
    type: str | None


class TotalsOut(BaseModel):
    amountDue: MoneyOut | None
    exchangeFee: MoneyOut | None
    isDifferenceCovered: bool


class LinkOut(BaseModel):
    rel: str
    href: str
    method: str
    isRequired: bool


class LoopErrorOut(BaseModel):
    code: str | None
    message: str | None


class AfterErrorOut(BaseModel):
    code: str
    upstreamStatus: int | None


class VerificationOut(BaseModel):
    result: str = Field(description="applied: the draft was found submitted")
    reason: str
    afterError: AfterErrorOut | None = Field(default=None, description="Loop's failure")


class DraftView(BaseModel):
    """A draft return now. `nextSteps`: the steps Loop offers, the only legal ones."""

    draftId: str
    state: str | None
    orderName: str | None
    currency: str | None
    lineItems: list[LineItemOut]
    returningItems: list[ReturningItemOut]
    reasons: list[ReasonOut]
    creditType: str | None = Field(default=None, description="refund or gift, once chosen")
    returnMethodId: str | None = Field(default=None, description="The method chosen")
    exchangeOptions: list[ExchangeOptionsOut]
    returnMethodOptions: list[ReturnMethodOut]
    totals: TotalsOut | None
    returnId: str | None
    statusPageUrl: str | None
    nextSteps: list[str]
    links: list[LinkOut]
    errors: list[LoopErrorOut] = Field(description="What Loop could not do of the step")
    verification: VerificationOut | None = Field(
        default=None,
        description="A submit that failed upstream, found applied by reading the draft",
    )


class DraftSummaryOut(BaseModel):
    draftId: str
    orderName: str
    state: str | None
    returnId: str | None
    conversationId: str | None
    key: str = Field(description="Who started it: an API key's name, or guide:<conversation>")
    createdAt: str
    updatedAt: str


class DraftListOut(BaseModel):
    items: list[DraftSummaryOut]
    enabled: bool = Field(
        description="False when the shop sends return links only (the policy switch)"
    )


class DetailsLineItemOut(BaseModel):
    id: str
    title: str | None
    sku: str | None
    quantity: int
    refundAmount: int = Field(description="Minor units")
    condition: str | None
    disposition: str | None


class ReturnDetailsOut(BaseModel):
    id: str
    state: str | None
    orderName: str | None
    orderNumber: str | None
    customerEmail: str | None
    currency: str | None
    returnTotal: int = Field(description="Minor units, as every amount here")
    refund: int
    exchange: int
    giftCard: int
    handlingFee: int
    carrier: str | None
    labelStatus: str | None
    labelUrl: str | None
    trackingNumber: str | None
    statusPageUrl: str | None
    type: str | None
    lineItems: list[DetailsLineItemOut]


# --- answers ---------------------------------------------------------------------------


def _answer(result: DraftResult, metrics: MetricsDep, step: str | None = None) -> JSONResponse:
    if step is not None and result.error_code != "invalid_input":
        metrics.actions.labels(ACTIONS[step], str(result.ok).lower()).inc()
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return JSONResponse(result.body, status_code=result.status, headers=headers)


# --- routes ----------------------------------------------------------------------------


@router.post(
    "/v1/drafts",
    status_code=201,
    response_model=DraftView,
    summary="Start a draft return for an order (Loop checks eligibility)",
)
async def start_draft(
    desk: DeskDep,
    metrics: MetricsDep,
    key: KeyName,
    body: DraftStartIn,
    idem: IdempotencyKey = None,
) -> JSONResponse:
    result = await desk.start(
        body.orderName,
        body.secondaryInput,
        is_gift=body.isGift,
        actor=key,
        conversation_id=body.conversationId,
        idempotency_key=idem,
    )
    return _answer(result, metrics, "create")


@router.get("/v1/drafts", response_model=DraftListOut, summary="Drafts made, newest change first")
async def list_drafts(
    desk: DeskDep,
    _key: KeyName,
    conversationId: Annotated[LongFilterText | None, Query()] = None,
    orderName: Annotated[
        list[LongFilterText] | None,
        Query(max_length=MAX_ORDER_FILTER, description="Only these orders' drafts (repeatable)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    rows = await desk.recent(limit=limit, conversation_id=conversationId, order_names=orderName)
    return {"items": [row.to_json() for row in rows], "enabled": desk.enabled()}


@router.get(
    "/v1/returns/details",
    response_model=ReturnDetailsOut,
    summary="One return's details by return id, order id or order name",
)
async def return_details(
    desk: DeskDep,
    _key: KeyName,
    returnId: Annotated[LoopId | None, Query()] = None,
    orderId: Annotated[LoopId | None, Query()] = None,
    orderName: Annotated[OrderName | None, Query()] = None,
    currencyType: Annotated[Literal["shop", "presentment"] | None, Query()] = None,
) -> JSONResponse:
    result = await desk.return_details(
        return_id=returnId, order_id=orderId, order_name=orderName, currency_type=currencyType
    )
    return JSONResponse(result.body, status_code=result.status)


@router.get("/v1/drafts/{draft_id}", response_model=DraftView, summary="A draft now, from Loop")
async def get_draft(
    desk: DeskDep, metrics: MetricsDep, key: KeyName, draft_id: LoopId
) -> JSONResponse:
    return _answer(await desk.get(draft_id, actor=key), metrics)


@router.get(
    "/v1/drafts/{draft_id}/totals",
    response_model=DraftView,
    summary="What the return is worth and what is due (`totals`)",
)
async def draft_totals(
    desk: DeskDep, metrics: MetricsDep, key: KeyName, draft_id: LoopId
) -> JSONResponse:
    return _answer(await desk.totals(draft_id, actor=key), metrics)


@router.post("/v1/drafts/{draft_id}/items", response_model=DraftView, summary="Add an order item")
async def add_item(
    desk: DeskDep,
    metrics: MetricsDep,
    key: KeyName,
    draft_id: LoopId,
    body: ItemIn,
    idem: IdempotencyKey = None,
) -> JSONResponse:
    result = await desk.add_item(
        draft_id, str(body.orderLineItemId), actor=key, idempotency_key=idem
    )
    return _answer(result, metrics, "add_returning_item")


@router.delete(
    "/v1/drafts/{draft_id}/items/{returning_item_id}",
    response_model=DraftView,
    summary="Take a returning item out of the draft",
)
async def remove_item(
    desk: DeskDep,
    metrics: MetricsDep,
    key: KeyName,
    draft_id: LoopId,
    returning_item_id: LoopId,
    idem: IdempotencyKey = None,
) -> JSONResponse:
    result = await desk.remove_item(draft_id, returning_item_id, actor=key, idempotency_key=idem)
    return _answer(result, metrics, "remove_returning_item")


@router.post(
    "/v1/drafts/{draft_id}/items/{returning_item_id}/reason",
    response_model=DraftView,
    summary="Why the item goes back",
)
async def set_reason(
    desk: DeskDep,
    metrics: MetricsDep,
    key: KeyName,
    draft_id: LoopId,
    returning_item_id: LoopId,
    body: ReasonIn,
    idem: IdempotencyKey = None,
) -> JSONResponse:
    result = await desk.set_reason(
        draft_id, returning_item_id, str(body.reasonId), actor=key, idempotency_key=idem
    )
    return _answer(result, metrics, "set_return_reason")


@router.post(
    "/v1/drafts/{draft_id}/items/{returning_item_id}/type",
    response_model=DraftView,
    summary="Credit (refund or store credit) or exchange, for one item",
)
async def set_type(
    desk: DeskDep,
    metrics: MetricsDep,
    key: KeyName,
    draft_id: LoopId,
    returning_item_id: LoopId,
    body: TypeIn,
    idem: IdempotencyKey = None,
) -> JSONResponse:
    result = await desk.set_type(
        draft_id, returning_item_id, body.returnType, actor=key, idempotency_key=idem
    )
    return _answer(result, metrics, "set_return_type")


@router.post(
    "/v1/drafts/{draft_id}/items/{returning_item_id}/exchange",
    response_model=DraftView,
    summary="The variant an exchanged item is swapped for",
)
async def add_exchange(
    desk: DeskDep,
    metrics: MetricsDep,
    key: KeyName,
    draft_id: LoopId,
    returning_item_id: LoopId,
    body: ExchangeIn,
    idem: IdempotencyKey = None,
) -> JSONResponse:
    result = await desk.add_exchange(
        draft_id, returning_item_id, str(body.variantId), actor=key, idempotency_key=idem
    )
    return _answer(result, metrics, "add_exchange_item")


@router.post(
    "/v1/drafts/{draft_id}/finalize", response_model=DraftView, summary="Confirm the items"
)
async def finalize(
    desk: DeskDep, metrics: MetricsDep, key: KeyName, draft_id: LoopId, idem: IdempotencyKey = None
) -> JSONResponse:
    result = await desk.finalize(draft_id, actor=key, idempotency_key=idem)
    return _answer(result, metrics, "finalize_items")


@router.post(
    "/v1/drafts/{draft_id}/credit-type",
    response_model=DraftView,
    summary="Refund, or store credit (gift)",
)
async def set_credit_type(
    desk: DeskDep,
    metrics: MetricsDep,
    key: KeyName,
    draft_id: LoopId,
    body: CreditTypeIn,
    idem: IdempotencyKey = None,
) -> JSONResponse:
    result = await desk.set_credit_type(draft_id, body.creditType, actor=key, idempotency_key=idem)
    return _answer(result, metrics, "set_credit_type")


@router.post(
    "/v1/drafts/{draft_id}/return-method",
    response_model=DraftView,
    summary="How the items travel back",
)
async def select_method(
    desk: DeskDep,
    metrics: MetricsDep,
    key: KeyName,
    draft_id: LoopId,
    body: ReturnMethodIn,
    idem: IdempotencyKey = None,
) -> JSONResponse:
    result = await desk.select_method(
        draft_id, str(body.returnMethodId), actor=key, idempotency_key=idem
    )
    return _answer(result, metrics, "select_return_method")


@router.post(
    "/v1/drafts/{draft_id}/submit",
    response_model=DraftView,
    summary="Create the return (`returnId`, `statusPageUrl`)",
)
async def submit(
    desk: DeskDep,
    customers: CustomersDep,
    metrics: MetricsDep,
    key: KeyName,
    draft_id: LoopId,
    idem: IdempotencyKey = None,
) -> JSONResponse:
    result = await desk.submit(draft_id, actor=key, idempotency_key=idem)
    customers.invalidate()  # a new return: the next lookup asks Loop
    return _answer(result, metrics, "submit")


@router.post("/v1/drafts/{draft_id}/cancel", response_model=DraftView, summary="Abandon the draft")
async def cancel(
    desk: DeskDep, metrics: MetricsDep, key: KeyName, draft_id: LoopId, idem: IdempotencyKey = None
) -> JSONResponse:
    result = await desk.cancel(draft_id, actor=key, idempotency_key=idem)
    return _answer(result, metrics, "cancel")
