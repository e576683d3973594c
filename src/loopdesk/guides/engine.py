"""The conversation engine: one customer message in, one answer out.

A turn reads the conversation's state from the store, works out what the message is
(its intent, the order or ZIP it gives, or the answer to what the guide just asked),
runs the flow, and writes the state back over the version it read, so any worker can
take the next message. When the guide stops (the customer asks for an agent, policy says
no, Loop fails, or it keeps not understanding) the answer carries the hand-off: a
summary for the agent and the routing decision with its facts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from loopdesk import store as db
from loopdesk.errors import ConversationConflict, LoopdeskError
from loopdesk.guides.classifier import CLARIFY_BELOW, Classified, classify
from loopdesk.guides.context import GuideServices, Profile, Step, Turn
from loopdesk.guides.entities import extract
from loopdesk.guides.flows import create_return
from loopdesk.guides.flows.exception import return_exception
from loopdesk.guides.flows.order_status import order_status
from loopdesk.guides.flows.orders import same_order
from loopdesk.guides.flows.return_status import return_status
from loopdesk.guides.flows.start_return import send_link, start_return
from loopdesk.guides.handoff import build_handoff
from loopdesk.guides.render import Renderer
from loopdesk.guides.reply import Channel, Reply
from loopdesk.guides.sms import quick_reply_for
from loopdesk.guides.state import ConversationState

log = structlog.get_logger("loopdesk.guides")

Flow = Callable[[Turn], Awaitable[Step]]
FLOWS: dict[str, Flow] = {
    "return_status": return_status,
    "start_return": start_return,
    "return_exception": return_exception,
    "order_status": order_status,
}
# The quick replies the guide offers when it asks what the customer wants; choosing one
# is as sure as it gets.
OPTIONS: dict[str, str] = {
    "Where's my return?": "return_status",
    "Start a return": "start_return",
    "I missed the return window": "return_exception",
    "Where's my order?": "order_status",
    "Talk to an agent": "agent",
}
MAX_NOT_UNDERSTOOD = 2  # the second message in a row not understood hands over
# A message that answers what the guide asked stays in that flow unless it is this sure
# of another topic.
SWITCH_ABOVE = 0.8


@dataclass(frozen=True)
class Answer:
    reply: str
    intent: str
    links: list[str]
    quick_replies: list[str]
    state: dict[str, Any]
    handoff: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "reply": self.reply,
            "intent": self.intent,
            "links": self.links,
            "quickReplies": self.quick_replies,
            "state": self.state,
            "handoff": self.handoff,
        }


class GuideEngine:
    def __init__(self, services: GuideServices, renderer: Renderer) -> None:
        self.services = services
        self.renderer = renderer

    async def handle(
        self,
        conversation_id: str,
        channel: Channel,
        text: str,
        profile: Profile,
        *,
        now: datetime | None = None,
    ) -> Answer:
        moment = now or datetime.now(UTC)
        async with self.services.store.reader() as session:
            row = await db.get_conversation(session, conversation_id)
        state = ConversationState.model_validate(row.state) if row else ConversationState()
        version = row.version if row else 0
        if channel == "sms":
            text = quick_reply_for(text, state.offered) or text
        # CPU work (and, once per process, the training): off the event loop.
        intent = await asyncio.to_thread(_intent, text)
        turn = Turn(
            services=self.services,
            conversation_id=conversation_id,
            channel=channel,
            profile=profile,
            text=text,
            intent=intent,
            entities=extract(text, expecting=state.awaiting),
            state=state,
            now=moment,
        )
        state.heard(text)
        state.turns += 1
        if turn.entities.order_name and state.awaiting != "verification":
            # Kept whatever happens next: asked what they want, the customer need not
            # repeat the order. A ZIP given for another order proves nothing here.
            if not same_order(turn.entities.order_name, state.order_name):
                state.verification = ""
            state.order_name = turn.entities.order_name
        step, topic = await self._step(turn)
        state.last_intent = topic
        state.offered = list(step.reply.quick_replies)
        handoff = None
        if step.handoff is not None:
            record = await build_handoff(turn, step.handoff, topic)
            state.handoff = record
            handoff = record.model_dump(mode="json")
        async with self.services.store.session() as session:
            saved = await db.save_conversation(
                session,
                conversation_id,
                channel=channel,
                emails=list(profile.emails),
                state=state.to_json(),
                read_version=version,
                at=moment,
            )
        if not saved:
            raise ConversationConflict(
                "another message of this conversation was answered at the same time: "
                "send this one again"
            )
        reply = step.reply
        rendered = self.renderer.render(reply, channel, customer_name=profile.first_name)
        links = [link.url for link in reply.links]
        if channel == "sms":
            # An SMS is its text: the links are those it kept (whole) within its length.
            links = [url for url in links if url in rendered]
        return Answer(
            reply=rendered,
            intent=topic,
            links=links,
            quick_replies=list(reply.quick_replies),
            state=state.to_json(),
            handoff=handoff,
        )

    async def _step(self, turn: Turn) -> tuple[Step, str]:
        """The step to run and the intent it answers."""
        state, intent = turn.state, turn.intent
        if state.handoff is not None:
            return Step(Reply("handoff.waiting", {}), handoff=state.handoff.reason), "agent"
        switching = (
            intent.intent in FLOWS
            and intent.intent != state.topic
            and intent.confidence >= SWITCH_ABOVE
            and not just_the_answer(turn.text)
            # A ZIP given when asked for one is never a new topic ("it was shipped to
            # 10024" reads like tracking to the classifier).
            and state.awaiting != "verification"
        )
        if state.draft is not None:
            # A return is being built: the answer is the draft flow's, unless the
            # customer clearly turned to something else (then the draft is cancelled).
            if not switching or create_return.offered_answer(turn):
                return await self._run(turn, "start_return"), "start_return"
            await create_return.cancel_for_switch(turn)
        answered = _answers(turn)
        if answered and state.topic and not switching:
            state.reset("not_understood")
            topic = state.topic
            return await self._run(turn, topic), topic
        if intent.intent == "agent" and not intent.clarify:
            state.note("did", "the customer asked for an agent")
            return Step(
                Reply("handoff", {"why": "asked"}), handoff="the customer asked for an agent"
            ), "agent"
        if intent.clarify and turn.entities.order_name and state.last_intent in FLOWS:
            # "And order 1234?": unsure alone, clear after the last answer.
            state.reset("not_understood")
            topic = state.last_intent
            return await self._run(turn, topic), topic
        if intent.clarify or intent.intent == "other":
            if state.bump("not_understood") >= MAX_NOT_UNDERSTOOD:
                return (
                    Step(
                        Reply("handoff", {"why": "not_understood"}),
                        handoff="the guide did not understand the customer twice",
                    ),
                    "other",
                )
            state.awaiting = "intent"
            message = "clarify" if intent.clarify else "fallback"
            topics = [t for t in OPTIONS.values() if t != "agent"]
            reply = Reply(message, {"options": topics}, quick_replies=tuple(OPTIONS))
            return Step(reply), "other"
        state.reset("not_understood")
        if intent.intent != state.topic:
            state.awaiting = ""
            state.reset("verification")
        return await self._run(turn, intent.intent), intent.intent

    async def _run(self, turn: Turn, topic: str) -> Step:
        try:
            if turn.state.awaiting == "verification" and topic in (
                "start_return",
                "return_exception",
            ):
                return await send_link(turn)
            return await FLOWS[topic](turn)
        except LoopdeskError as exc:
            log.warning("guide.upstream_failed", topic=topic, error=exc.code)
            turn.state.note("found", f"a request failed ({exc.code})")
            return Step(
                Reply("handoff", {"why": "upstream"}), handoff=f"a request failed ({exc.code})"
            )


def _intent(text: str) -> Classified:
    chosen = OPTIONS.get(text.strip())
    if chosen is not None:
        return Classified(chosen, 1.0, False)  # type: ignore[arg-type]  # OPTIONS holds intents
    if not text.strip():
        return Classified("other", 0.0, True)
    return classify([text])[0]


_FILLER = frozenset(
    [
        "order",
        "number",
        "no",
        "num",
        "it",
        "its",
        "it's",
        "is",
        "the",
        "my",
        "a",
        "for",
        "of",
        "please",
        "pls",
        "thanks",
        "ok",
        "okay",
        "yes",
        "sure",
        "here",
        "pedido",
        "orden",
        "número",
        "es",
        "mi",
        "el",
        "la",
        "zip",
        "code",
        "postal",
    ]
)


def just_the_answer(text: str) -> bool:
    """The message is the value asked for and little else ("order 5605", "it's
    #5605", "10024 thanks"): it answers, whatever the classifier makes of it."""
    words = [w.strip(".,!?:;#()'\"").lower() for w in text.split()]
    rest = [w for w in words if w and not any(c.isdigit() for c in w) and w not in _FILLER]
    return not rest


def _answers(turn: Turn) -> bool:
    """The message gives what the guide asked for."""
    awaiting, entities = turn.state.awaiting, turn.entities
    if awaiting == "order" or awaiting == "which_return":
        return entities.order_name is not None
    if awaiting == "verification":
        return bool(entities.postal_code or entities.email or entities.phone)
    return False


__all__ = ["CLARIFY_BELOW", "Answer", "GuideEngine"]
