"""The self-service guide: one customer message in, the answer out."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from loopdesk.api.deps import KeyName
from loopdesk.api.errors import ERROR_RESPONSES
from loopdesk.api.routes.routing import CustomerIn
from loopdesk.guides.context import Profile
from loopdesk.guides.engine import GuideEngine

router = APIRouter(prefix="/v1/guide", tags=["guide"], responses=ERROR_RESPONSES)

FactValue = bool | int | str


async def _engine(request: Request) -> GuideEngine:
    engine: GuideEngine = request.app.state.guide
    return engine


EngineDep = Annotated[GuideEngine, Depends(_engine)]


class MessageIn(BaseModel):
    conversationId: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="The help desk's conversation id: the guide's state is kept under it",
    )
    channel: Literal["chat", "email", "sms"]
    text: str = Field(max_length=20_000, description="The customer's message")
    customer: CustomerIn


class HandoffOut(BaseModel):
    summary: str = Field(description="For the agent: what was asked, found and done")
    queue: str
    priority: int
    facts: dict[str, FactValue]
    reason: str
    rule: str = Field(description="The routing rule that chose the queue")
    at: str


class AnswerOut(BaseModel):
    reply: str = Field(description="The text to send, rendered for the channel")
    intent: str
    links: list[str]
    quickReplies: list[str]
    state: dict[str, Any]
    handoff: HandoffOut | None


@router.post(
    "/messages",
    response_model=AnswerOut,
    summary="A customer's message to the guide: the reply, or the hand-off to an agent",
)
async def message(body: MessageIn, engine: EngineDep, _key: KeyName) -> dict[str, Any]:
    profile = Profile(
        emails=tuple(body.customer.emails),
        phones=tuple(body.customer.phones),
        name=body.customer.name,
        attributes=body.customer.attributes,
    )
    answer = await engine.handle(body.conversationId, body.channel, body.text, profile)
    return answer.to_json()
