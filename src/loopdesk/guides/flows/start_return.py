"""Start a return: find the order, prove it is the customer's (ZIP, email or phone, as
the shop's Loop setting asks), then create the return in the conversation
(`create_return`, Loop's Draft Returns API) or send the link Loop creates. A wrong
answer gets one more try, then an agent. The link is only ever the one Loop answered
with.

The link is sent instead of a draft when the merchant turned creating returns off
(`[returns] create_in_conversation = false`), when Loop has not enabled the Draft
Returns API for the shop (it answers 401/403), and after an exception (its own flow)."""

from __future__ import annotations

from typing import Literal

from loopdesk.guides.context import Step, Turn
from loopdesk.guides.flows import create_return
from loopdesk.guides.flows.orders import MAX_OFFERED, as_known, recent_orders
from loopdesk.guides.reply import Link, Reply

TOPIC = "start_return"
MAX_WRONG = 2  # the second wrong answer hands over
# Loop refusing the order/answer pair (its bodies differ: 400, 404, 422).
REFUSED = frozenset({400, 404, 422})


async def start_return(turn: Turn) -> Step:
    state = turn.state
    if state.draft is not None:
        return await create_return.answer(turn)
    state.topic = TOPIC
    if turn.entities.order_name:
        state.order_name = turn.entities.order_name
    if not state.order_name:
        return await ask_order(turn, "start_return.ask_order")
    known = recent_orders(await turn.view())
    state.order_name = as_known(state.order_name, known)
    return await send_link(turn)


async def ask_order(turn: Turn, message: str) -> Step:
    """Ask which order, offering the customer's recent ones as quick replies."""
    turn.state.awaiting = "order"
    orders = recent_orders(await turn.view())[:MAX_OFFERED]
    return Step(Reply(message, {"orders": orders}, quick_replies=tuple(orders)))


def _given(turn: Turn) -> str:
    """The verification the customer gave in this message, per the shop's setting."""
    entities, mode = turn.entities, turn.services.policy.returns.link_verification
    if mode == "email":
        return entities.email or ""
    if mode == "phone":
        return entities.phone or ""
    return entities.postal_code or ""


def _known(turn: Turn) -> list[str]:
    """Answers the help desk already knows: the profile's addresses or phones, or a ZIP
    kept in its attributes."""
    mode = turn.services.policy.returns.link_verification
    if mode == "email":
        return list(turn.profile.emails[:3])
    if mode == "phone":
        return list(turn.profile.phones[:2])
    attributes = turn.profile.attributes
    for name in ("zip", "postalCode", "postal_code", "zipCode"):
        value = attributes.get(name)
        if isinstance(value, str) and value.strip():
            return [value.strip()]
    return []


async def _open_draft(turn: Turn, answer: str) -> Step | Literal["refused", "link"]:
    """The return made in the conversation for `answer`: its first question, or
    `refused` (Loop refused the order and answer), or `link` (send the link instead:
    Loop has not enabled the Draft Returns API for the shop, or its draft shows no
    items)."""
    state, drafts = turn.state, turn.services.drafts
    assert drafts is not None
    opened = await drafts.start(
        state.order_name, answer, actor=turn.actor, conversation_id=turn.conversation_id
    )
    if opened.ok and opened.draft is not None and opened.draft.id:
        step = await create_return.opened(turn, opened, answer)
        return "link" if step is None else step
    if create_return.upstream_status(opened) in REFUSED or opened.status == 422:
        return "refused"
    if create_return.not_enabled(opened):
        state.note("found", "Loop's Draft Returns API is not enabled for the shop")
        return "link"
    state.note("found", f"Loop could not open a draft return ({opened.error_code})")
    return Step(
        Reply("handoff", {"why": "upstream"}),
        handoff="Loop did not answer the draft return request",
    )


async def send_link(turn: Turn, *, lead: str = "") -> Step:
    """Create the return link for `state.order_name`, asking for the verification when
    it is not known yet. `lead` names a message that comes first (an exception made)."""
    state, policy = turn.state, turn.services.policy
    field = policy.returns.link_verification
    given = _given(turn)
    if given:
        state.verification = given
    tries = [state.verification] if state.verification else _known(turn)
    if not tries:
        state.awaiting = "verification"
        return Step(
            Reply(
                "start_return.ask_verification",
                {"order_name": state.order_name, "field": field, "lead": lead},
            )
        )
    drafts = turn.services.drafts
    # An exception's order goes by the link: Loop honours its allowlist entry there.
    in_conversation = bool(drafts and drafts.enabled()) and not lead and state.topic == TOPIC
    for answer in tries:
        if in_conversation:
            tried = await _open_draft(turn, answer)
            if isinstance(tried, Step):
                return tried
            if tried == "refused":
                continue
            in_conversation = False  # the link, for this answer and any other
        outcome = await turn.services.actions.return_link(
            state.order_name, answer, key_name=turn.actor
        )
        if outcome.ok:
            url = str(outcome.body["url"])
            state.awaiting = ""
            state.topic = ""
            state.reset("verification")
            state.note("links", url)
            state.note("did", f"sent the return link for order {state.order_name}")
            state.note("told", f"link:{state.order_name}")
            return Step(
                Reply(
                    "start_return.link",
                    {"order_name": state.order_name, "url": url, "lead": lead},
                    links=(Link(url, "Start your return"),),
                )
            )
        if outcome.status not in REFUSED:
            state.note("found", f"Loop could not create a return link (HTTP {outcome.status})")
            return Step(
                Reply("handoff", {"why": "upstream"}),
                handoff="Loop did not answer the return-link request",
            )
    # Every answer tried was refused: only what the customer typed counts as a try.
    state.verification = ""
    if not given:
        state.awaiting = "verification"
        return Step(
            Reply(
                "start_return.ask_verification",
                {"order_name": state.order_name, "field": field, "lead": lead},
            )
        )
    wrong = state.bump("verification")
    state.note("found", f"Loop refused order {state.order_name} with the {field} given ({wrong}x)")
    if wrong >= MAX_WRONG:
        state.awaiting = ""
        return Step(
            Reply(
                "start_return.mismatch_handoff", {"order_name": state.order_name, "field": field}
            ),
            handoff=f"the order number and {field} did not match twice",
        )
    state.awaiting = "verification"
    return Step(Reply("start_return.mismatch", {"order_name": state.order_name, "field": field}))
