"""Return-window exceptions: the merchant's policy decides (`policy.exceptions`), the
ledger records every decision, and an exception granted is an allowlist entry for the
order followed by the return link. A refusal says which rule applies, in the merchant's
words, offers what else can be done, and hands over."""

from __future__ import annotations

from loopdesk.errors import LoopdeskError
from loopdesk.guides.context import Step, Turn
from loopdesk.guides.flows.orders import as_known, recent_orders
from loopdesk.guides.flows.start_return import ask_order, send_link
from loopdesk.guides.reply import Reply

TOPIC = "return_exception"


async def return_exception(turn: Turn) -> Step:
    state = turn.state
    state.topic = TOPIC
    if turn.entities.order_name:
        state.order_name = turn.entities.order_name
    if not state.order_name:
        return await ask_order(turn, "exception.ask_order")
    state.order_name = as_known(state.order_name, recent_orders(await turn.view()))
    try:
        result = await turn.services.exceptions.request(
            emails=list(turn.profile.emails),
            vip=turn.vip,
            order_name=state.order_name,
            conversation_id=turn.conversation_id,
            key_name=turn.actor,
            now=turn.now,
        )
    except LoopdeskError as exc:
        state.note("found", f"the exception could not be checked ({exc.code})")
        return Step(
            Reply("handoff", {"why": "upstream"}),
            handoff="the exception could not be checked: Loop or Order Tracking failed",
        )
    decision = result.decision
    if result.upstream_failed or result.pending:
        state.note("found", "the allowlist entry could not be confirmed in Loop")
        return Step(
            Reply("handoff", {"why": "upstream"}),
            handoff="the allowlist entry for the exception could not be created in Loop",
        )
    for criterion in decision.criteria:
        state.note(
            "found", f"{criterion.name}: {'yes' if criterion.held else 'no'} ({criterion.detail})"
        )
    outcome = decision.outcome
    order = state.order_name
    if outcome in ("eligible", "already_granted", "within_window"):
        if outcome == "eligible":
            state.note(
                "did",
                f"granted a return-window exception for {order} (allowlist {result.allowlist_id})",
            )
        lead = {
            "eligible": "exception.granted",
            "already_granted": "exception.already_granted",
            "within_window": "exception.within_window",
        }[outcome]
        # The topic stays: the ZIP that follows goes to the link (engine), and "the
        # same for order 1234" is another exception request.
        return await send_link(turn, lead=lead)
    state.awaiting = ""
    if outcome == "refused":
        state.note("did", f"refused a return-window exception for {order}: {decision.reason}")
        return Step(
            Reply(
                "exception.refused",
                {"order_name": order, "reason": decision.reason},
            ),
            handoff=f"exception refused by policy: {decision.reason}",
        )
    return Step(
        Reply("exception.unknown", {"order_name": order, "reason": decision.reason}),
        handoff=f"cannot tell whether {order} qualifies: {decision.reason}",
    )
