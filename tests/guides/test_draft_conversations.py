"""Scripted conversations that create the whole return in the conversation, end to end.

`draft_conversations.yaml` runs through the runner of `test_conversations.py` (the
same always-checks: SMS length, links whole, no invented link, a complete hand-off
summary) against the sandbox's seeded world, whose draft-return customers (#7101 to
#7105) cover refund, store credit, exchanges in and out of stock, an amount due, a final
sale item and an order past its window. Besides, each turn may check where the draft
stands in the sandbox (Loop's truth), the conversation's draft step, that the one link
is Loop's status page of the return this conversation created, and that a hand-off
names the draft; each conversation, its audit trail (every step, in order).

A conversation's sandbox changes (faults, settings, stock) are undone after it, and the
returns it created are cancelled through loopdesk's API (Loop counts the items of a
cancelled return as returnable again), so the conversations run in any order.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.guides.conftest import Containment, Guide, Outcome
from tests.guides.test_conversations import (
    Conversation,
    Turn,
    load_conversations,
    summary_gaps,
    turn_problems,
)

SCRIPT = Path(__file__).with_name("draft_conversations.yaml")
# `clock`: seconds the sandbox's draft clock moves forward before the turn is said.
TURN_KEYS = frozenset(
    {
        "step",
        "draft",
        "status_page",
        "handoff_names_draft",
        "quick_replies_exclude",
        "reply_lacks",
        "clock",
    }
)
# faults: sandbox fault rules (FaultController.add's arguments); sandbox: draft-return
# settings; inventory: {variant id: stock}; audit: the actions of the conversation's
# audit trail, oldest first; links_only: the merchant's switch off (policy
# `[returns] create_in_conversation = false`) for this conversation.
CONVERSATION_KEYS = frozenset({"faults", "sandbox", "inventory", "audit", "links_only"})
# What `sandbox` settings go back to after a conversation (the seeded world's).
SANDBOX_DEFAULTS = {"enabled": True, "disabled_status": 403, "exchange_fee": "0.00"}
STEPS = {"items", "reason", "outcome", "variant", "method", "confirm"}

CONVERSATIONS = load_conversations(SCRIPT, turn_keys=TURN_KEYS, conversation_keys=CONVERSATION_KEYS)


class Sandbox:
    """What the in-process sandbox (Loop) holds, for the checks."""

    def __init__(self, guide: Guide) -> None:
        self.guide = guide
        self.world = guide.app.state.upstream.sandbox.state.world

    def deep_link(self, order_name: str, answer: str) -> str:
        token = uuid.uuid5(uuid.NAMESPACE_URL, f"{order_name}|{answer.strip().casefold()}")
        return f"https://{self.world.domain}/#/link/{token}"

    def known_links(self) -> frozenset[str]:
        """Loop's return links and tracking pages of the draft customers' orders, and
        every return's status page: anything else was made up."""
        links = {str(r.get("status_page_url")) for r in self.world.returns.values()}
        for name in ("#7101", "#7102", "#7103", "#7104", "#7105"):
            order = self.world.find_order(name)
            if order is not None:
                links.add(self.deep_link(name, str(order["zip"])))
                links.add(self.deep_link(name, str(order["customer_email"])))
                links.update(str(s["trackingUrl"]) for s in order["shipments"])
        return frozenset(links)

    async def drafts(self) -> dict[str, dict[str, Any]]:
        async with self.guide.sandbox as client:
            listed = (await client.get("/_sandbox/draft-returns")).json()["drafts"]
        return {str(d["id"]): d for d in listed}

    async def settings(self, values: dict[str, Any]) -> None:
        async with self.guide.sandbox as client:
            answer = await client.post("/_sandbox/draft-returns/settings", json=values)
            assert answer.status_code == 200, answer.text

    async def clock(self, body: dict[str, Any]) -> None:
        async with self.guide.sandbox as client:
            answer = await client.post("/_sandbox/draft-returns/clock", json=body)
            assert answer.status_code == 200, answer.text

    async def stock(self, inventory: dict[Any, int]) -> dict[Any, int]:
        """Set each variant's inventory; answers what it was."""
        before = {}
        async with self.guide.sandbox as client:
            for variant_id, count in inventory.items():
                found = self.world.find_variant(int(variant_id))
                assert found is not None, f"no variant {variant_id} in the seeded world"
                before[variant_id] = int(found[1]["inventory"])
                path = f"/_sandbox/variants/{variant_id}/inventory"
                answer = await client.post(path, json={"inventory": count})
                assert answer.status_code == 200, answer.text
        return before


async def conversation_drafts(guide: Guide, convo: Conversation) -> list[str]:
    """The drafts loopdesk opened for this conversation, oldest first."""
    stored = await guide.app.state.services.drafts.recent(conversation_id=convo.conversation_id)
    return [d.id for d in sorted(stored, key=lambda d: d.created_at)]


def draft_problems(
    at: str,
    turn: Turn,
    answer: dict[str, Any],
    draft: dict[str, Any] | None,
    sandbox: Sandbox,
) -> list[str]:
    """The draft expectations of one turn; `draft` is the sandbox's latest draft of
    the conversation (None: none opened yet)."""
    expect, problems = turn.expect, []
    state_draft = answer["state"].get("draft")

    def check(ok: bool, what: str) -> None:
        if not ok:
            problems.append(f"{at}: {what}")

    if "step" in expect:
        step = state_draft["step"] if state_draft else None
        check(step == expect["step"], f"draft step {step!r}, expected {expect['step']!r}")
    if "draft" in expect:
        state = draft["state"] if draft else None
        check(state == expect["draft"], f"the sandbox's draft is {state!r}, not {expect['draft']}")
    if expect.get("status_page"):
        rid = draft.get("return_id") if draft else None
        ret = sandbox.world.get_return(str(rid)) if rid else None
        page = ret.get("status_page_url") if ret else None
        check(bool(page) and answer["links"] == [page], f"links {answer['links']}, not [{page}]")
    if "return_link_for" in expect:
        name = expect["return_link_for"]
        order = sandbox.world.find_order(name)
        wanted = sandbox.deep_link(name, str(order["zip"])) if order else "?"
        check(answer["links"] == [wanted], f"links {answer['links']}, not Loop's link {wanted}")
    if expect.get("handoff_names_draft"):
        handoff = answer.get("handoff") or {}
        named = draft is not None and str(draft["id"]) in str(handoff.get("summary", ""))
        check(named, f"the hand-off does not name the draft ({draft and draft['id']})")
    for option in expect.get("quick_replies_exclude", []):
        check(option not in answer["quickReplies"], f"{option!r} offered: {answer['quickReplies']}")
    for fact in expect.get("reply_lacks", []):
        check(fact not in answer["reply"], f"{fact!r} in the reply {answer['reply']!r}")
    return problems


async def audit_trail(guide: Guide, convo: Conversation) -> list[str]:
    key = f"guide:{convo.conversation_id}"[:128]
    answer = await guide.get("/v1/audit", key=key, limit=200)
    assert answer.status_code == 200, answer.text
    return [item["action"] for item in reversed(answer.json()["items"])]


async def undo(guide: Guide, convo: Conversation, sandbox: Sandbox, stock: dict[Any, int]) -> None:
    guide.faults.clear()
    if any("clock" in turn.expect for turn in convo.turns):
        await sandbox.clock({"reset": True})
    if convo.extra.get("sandbox"):
        await sandbox.settings(SANDBOX_DEFAULTS)
    if stock:
        await sandbox.stock(stock)
    listed = await sandbox.drafts()
    for draft_id in await conversation_drafts(guide, convo):
        rid = listed.get(draft_id, {}).get("return_id")
        if rid:
            answer = await guide.post(f"/v1/returns/{rid}/cancel")
            assert answer.status_code == 200, answer.text


def _param(convo: Conversation) -> Any:
    marks = [pytest.mark.xfail(reason=convo.known_issue, strict=True)] if convo.known_issue else []
    return pytest.param(convo, id=convo.name, marks=marks)


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("convo", [_param(c) for c in CONVERSATIONS])
async def test_draft_conversation(
    convo: Conversation, draft_guide: Guide, draft_containment: Containment
) -> None:
    guide, sandbox = draft_guide, Sandbox(draft_guide)
    outcome = Outcome(convo.name, convo.intent, convo.channel, convo.policy_allows_containment)
    problems: list[str] = []
    said: list[str] = []
    for rule in convo.extra.get("faults", []):
        guide.faults.add(**rule)
    if convo.extra.get("sandbox"):
        await sandbox.settings(convo.extra["sandbox"])
    stock = await sandbox.stock(convo.extra.get("inventory") or {})
    desk = guide.app.state.services.drafts
    policy = desk.policy
    if convo.extra.get("links_only"):
        desk.policy = replace(policy, returns=replace(policy.returns, create_in_conversation=False))
    try:
        for number, turn in enumerate(convo.turns):
            said.append(turn.say)
            if "clock" in turn.expect:
                await sandbox.clock({"advance_seconds": turn.expect["clock"]})
            response = await guide.say(
                convo.conversation_id, convo.channel, convo.customer, turn.say
            )
            if response.status_code != 200:
                problems.append(f"turn {number + 1}: HTTP {response.status_code} {response.text}")
                outcome.errored = True
                break
            answer = response.json()
            problems += turn_problems(convo, number, turn, answer, sandbox.known_links())
            opened = await conversation_drafts(guide, convo)
            draft = (await sandbox.drafts()).get(opened[-1]) if opened else None
            at = f"turn {number + 1} ({turn.say[:40]!r})"
            problems += draft_problems(at, turn, answer, draft, sandbox)
            if answer.get("handoff") is not None:
                outcome.handed_off = True
                gaps = summary_gaps(convo, said, answer["handoff"])
                outcome.summaries.append(gaps)
                problems += [f"turn {number + 1}: the hand-off summary lacks {g}" for g in gaps]
        if "audit" in convo.extra and not outcome.errored:
            trail = await audit_trail(guide, convo)
            if trail != convo.extra["audit"]:
                problems.append(f"audit trail {trail}, expected {convo.extra['audit']}")
    finally:
        desk.policy = policy
        await undo(guide, convo, sandbox, stock)
        outcome.failed = bool(problems)
        draft_containment.record(outcome)
    assert not problems, f"{convo.name}:\n" + "\n".join(problems)


def test_the_draft_script_covers_the_issue_scenarios() -> None:
    names = [c.name for c in CONVERSATIONS]
    assert len(names) == len(set(names)), "conversation names must be unique"
    assert {c.channel for c in CONVERSATIONS} == {"chat", "email", "sms"}
    for needed in (
        "refund",
        "store-credit",
        "exchange-in-stock",
        "exchange-out-of-stock",
        "amount-due",
        "final-sale",
        "abandon",
        "submit-fails",
        "links-only",
    ):
        assert any(needed in n for n in names), needed
    faults = [f for c in CONVERSATIONS for f in c.extra.get("faults", [])]
    assert {"path_contains": "/submit", "status": 500} in faults
    assert {"path_contains": "/submit", "status": 500, "after": True} in faults
    for convo in CONVERSATIONS:
        for turn in convo.turns:
            assert turn.expect.get("step", "items") in STEPS | {None}, convo.name
