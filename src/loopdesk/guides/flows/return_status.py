"""Where's my return: each return's stage in plain words, its carrier and tracking
number, the status page, and when the refund, credit or exchange should land.

Which returns: those of the order named, else the open ones (and any closed in the last
`RECENT_DAYS`), newest first. One: in full. Up to `MAX_SUMMARISED`: each briefly.
More: the newest briefly, then the customer picks an order. None: say so and offer to
start one. A refund later than its estimate is not explained away: an agent looks.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from loopdesk.domain.facts import OPEN_STATES
from loopdesk.domain.models import LoopReturn
from loopdesk.domain.timeline import estimate, return_stage
from loopdesk.guides.context import Step, Turn
from loopdesk.guides.flows.orders import same_order
from loopdesk.guides.reply import Link, Reply

TOPIC = "return_status"
RECENT_DAYS = 30
MAX_SUMMARISED = 3
START_RETURN = "Start a return"
AGENT = "Talk to an agent"


def _unreachable(turn_view: Any) -> bool:
    return any(e.code == "nothing_fetched" for e in turn_view.meta.errors)


def summary(turn: Turn, ret: LoopReturn) -> dict[str, Any]:
    """What the templates read about one return."""
    stage = return_stage(ret)
    landing = estimate(ret, turn.services.policy.processing, turn.now)
    return {
        "id": ret.id,
        "order_name": ret.order.name,
        "stage": stage.value,
        "outcome": ret.outcome,
        "carrier": ret.shipping.carrier,
        "tracking_number": ret.shipping.trackingNumber,
        "status_page_url": ret.shipping.statusPageUrl,
        "estimate": None
        if landing is None
        else {
            "kind": landing.kind,
            "date": landing.lands_on.isoformat(),
            "date_words": f"{landing.lands_on:%A, %B} {landing.lands_on.day}",
            "overdue": landing.late,
        },
    }


def _relevant(turn: Turn, returns: list[LoopReturn]) -> list[LoopReturn]:
    order = turn.entities.order_name or (turn.state.order_name if turn.state.topic == TOPIC else "")
    if order:
        mine = [r for r in returns if same_order(r.order.name, order)]
        if mine:
            return mine
    since = turn.now - timedelta(days=RECENT_DAYS)
    return [
        r for r in returns if r.state.strip().lower() in OPEN_STATES or r.updated >= since
    ] or returns[:1]


async def return_status(turn: Turn) -> Step:
    state = turn.state
    state.topic = TOPIC
    state.awaiting = ""
    view = await turn.view()
    if not view.returns:
        if _unreachable(view):
            state.note("found", "Loop could not be reached and nothing is stored for the customer")
            return Step(Reply("handoff", {"why": "upstream"}), handoff="Loop could not be reached")
        state.note("found", "no returns for the customer's addresses")
        state.note("told", "returns:none")
        return Step(Reply("return_status.none", {}, quick_replies=(START_RETURN, AGENT)))
    returns = _relevant(turn, view.returns)
    shown = [summary(turn, r) for r in returns[:MAX_SUMMARISED]]
    links = tuple(
        Link(s["status_page_url"], f"Return for {s['order_name']}")
        for s in shown
        if s["status_page_url"]
    )
    for item in shown:
        state.note("found", f"return {item['id']} for {item['order_name']}: {item['stage']}")
        state.note("told", f"return:{item['id']}:{item['stage']}")
    overdue = [s for s in shown if s["estimate"] and s["estimate"]["overdue"]]
    stale = bool(view.meta.stale)
    if len(shown) == 1:
        reply = Reply("return_status.one", {"ret": shown[0], "stale": stale}, links=links)
        if len(returns) == 1:
            state.order_name = shown[0]["order_name"]
    else:
        more = len(returns) > MAX_SUMMARISED
        orders = list(dict.fromkeys(r.order.name for r in returns))[:5] if more else []
        if more:
            state.awaiting = "which_return"
        reply = Reply(
            "return_status.several",
            {"returns": shown, "more": len(returns) - len(shown), "stale": stale},
            links=links,
            quick_replies=tuple(orders),
        )
    if overdue:
        state.note("found", f"the refund for {overdue[0]['order_name']} is later than expected")
        return Step(reply, handoff="a refund, credit or exchange is later than its estimate")
    return Step(reply)
