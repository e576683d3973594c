"""Scripted customer conversations through `POST /v1/guide/messages`, end to end.

Each conversation of `conversations.yaml` runs against one app (its own sandbox over the
world of `world.py`), turn by turn, and every expectation is checked: the intent, a
hand-off or none, the links (the exact Loop return link, status pages, tracking pages;
never a link the world does not hold), facts in the reply, quick replies. Always: an SMS
reply fits in 320 characters, and on chat and SMS each link is in the text, whole. Each
hand-off must carry a complete summary. How each conversation ended feeds the
containment report printed at the end of the run (`conftest.py`).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from loopdesk.sandbox.data import load_world
from tests.guides import world
from tests.guides.conftest import Containment, Guide, Outcome

SCRIPT = Path(__file__).with_name("conversations.yaml")
CHANNELS = ("chat", "email", "sms")
INTENTS = ("return_status", "start_return", "return_exception", "order_status", "agent", "other")
SMS_LIMIT = 320
HANDOFF_KEYS = {"summary", "queue", "priority", "facts", "reason", "rule"}
ANSWER_KEYS = {"reply", "intent", "links", "quickReplies", "state", "handoff"}
TURN_KEYS = {
    "say",
    "intent",
    "handoff",
    "links",
    "link_contains",
    "return_link_for",
    "status_pages",
    "tracking_links",
    "reply_contains",
    "quick_replies_include",
}
CONVERSATION_KEYS = {
    "name",
    "intent",
    "channel",
    "customer",
    "fault",
    "policy_allows_containment",
    "order",
    "known_issue",
    "turns",
}
RUN = uuid.uuid4().hex[:8]  # conversation ids unique to this run


@dataclass(frozen=True)
class Turn:
    say: str
    expect: dict[str, Any]


@dataclass(frozen=True)
class Conversation:
    name: str
    intent: str
    channel: str
    customer: dict[str, Any]
    policy_allows_containment: bool
    turns: tuple[Turn, ...]
    order: str = ""
    fault: dict[str, Any] = field(default_factory=dict)
    known_issue: str = ""
    # A sibling script's own keys (`draft_conversations.yaml`), as the YAML gives them.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def conversation_id(self) -> str:
        return f"scripted-{self.name}-{RUN}"


def load_conversations(
    path: Path = SCRIPT,
    *,
    turn_keys: frozenset[str] = frozenset(),
    conversation_keys: frozenset[str] = frozenset(),
) -> list[Conversation]:
    """The scripted conversations; ValueError names the conversation and the bad key.
    `turn_keys` and `conversation_keys` are a sibling script's own, beside these."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    conversations = []
    allowed_turn = TURN_KEYS | turn_keys
    for index, item in enumerate(raw["conversations"]):
        where = f"{path.name}: conversations[{index}] ({item.get('name', '?')})"
        unknown = set(item) - CONVERSATION_KEYS - conversation_keys
        missing = {"name", "intent", "channel", "customer", "policy_allows_containment"} - set(item)
        if unknown or missing:
            raise ValueError(f"{where}: unknown keys {unknown or '{}'}, missing {missing or '{}'}")
        if item["intent"] not in INTENTS or item["channel"] not in CHANNELS:
            raise ValueError(f"{where}: intent or channel not known")
        turns = []
        for number, turn in enumerate(item.get("turns") or []):
            if not isinstance(turn.get("say"), str) or set(turn) - allowed_turn:
                raise ValueError(
                    f"{where}: turn {number}: needs `say`, knows {sorted(allowed_turn)}"
                )
            turns.append(Turn(turn["say"], {k: v for k, v in turn.items() if k != "say"}))
        if not turns:
            raise ValueError(f"{where}: no turns")
        conversations.append(
            Conversation(
                name=item["name"],
                intent=item["intent"],
                channel=item["channel"],
                customer=item["customer"],
                policy_allows_containment=bool(item["policy_allows_containment"]),
                turns=tuple(turns),
                order=item.get("order", ""),
                fault=item.get("fault") or {},
                known_issue=item.get("known_issue", ""),
                extra={k: v for k, v in item.items() if k in conversation_keys},
            )
        )
    return conversations


CONVERSATIONS = load_conversations()


def _param(convo: Conversation) -> Any:
    """A known issue is an expected failure; strict, so a fix shows up as a failure to
    remove the note."""
    marks = [pytest.mark.xfail(reason=convo.known_issue, strict=True)] if convo.known_issue else []
    return pytest.param(convo, id=convo.name, marks=marks)


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def turn_problems(
    convo: Conversation,
    number: int,
    turn: Turn,
    answer: dict[str, Any],
    known: frozenset[str] | None = None,
) -> list[str]:
    """Everything in one answer that breaks the turn's expectations or the guide's rules.
    `known`: every link the guide may send (default: this world's, `world.known_links`)."""
    at = f"turn {number + 1} ({turn.say[:40]!r})"
    problems: list[str] = []
    if set(answer) < ANSWER_KEYS:
        return [f"{at}: answer lacks {sorted(ANSWER_KEYS - set(answer))}"]
    reply, links = answer["reply"], answer["links"]
    quick, handoff = answer["quickReplies"], answer["handoff"]
    expect = turn.expect

    def check(ok: bool, what: str) -> None:
        if not ok:
            problems.append(f"{at}: {what}")

    # Always: what every answer must hold, whatever the script says.
    check(isinstance(reply, str) and bool(reply.strip()), "the reply is empty")
    if convo.channel == "sms":
        check(len(reply) <= SMS_LIMIT, f"SMS reply of {len(reply)} characters: {reply!r}")
    if convo.channel in ("chat", "sms"):
        for link in links:
            check(link in reply, f"link {link} is not whole in the reply {reply!r}")
    invented = [link for link in links if link not in (known or world.known_links())]
    check(not invented, f"links the world does not hold: {invented}")
    # The script's expectations.
    if "intent" in expect:
        check(answer["intent"] == expect["intent"], f"intent {answer['intent']!r}")
    if "handoff" in expect:
        check(
            (handoff is not None) == expect["handoff"],
            f"hand-off {handoff is not None}, expected {expect['handoff']}"
            + (f" ({handoff.get('reason')})" if handoff else f"; reply {reply!r}"),
        )
    if "links" in expect:
        check(len(links) == expect["links"], f"{len(links)} links, expected {expect['links']}")
    if "link_contains" in expect:
        check(any(expect["link_contains"] in link for link in links), f"links {links}")
    if "return_link_for" in expect and known is None:
        name = expect["return_link_for"]
        wanted = world.deep_link(name, world.order(name).zip)
        check(wanted in links, f"the return link for {name} is not in {links}")
    for return_id in expect.get("status_pages", []):
        check(world.status_page(return_id) in links, f"no status page of {return_id} in {links}")
    for code in expect.get("tracking_links", []):
        check(world.tracking_page(code) in links, f"no tracking page of {code} in {links}")
    for fact in expect.get("reply_contains", []):
        check(fact in reply, f"{fact!r} not in the reply {reply!r}")
    for option in expect.get("quick_replies_include", []):
        check(option in quick, f"quick reply {option!r} not in {quick}")
    return problems


def summary_gaps(convo: Conversation, said: list[str], handoff: dict[str, Any]) -> list[str]:
    """What a hand-off lacks for the agent to take over without asking again."""
    gaps = sorted(HANDOFF_KEYS - set(handoff))
    summary = _squash(str(handoff.get("summary") or ""))
    if _squash(said[0]) not in summary:
        gaps.append("the first message")
    given = convo.order and any(convo.order.lstrip("#") in text for text in said)
    if given and convo.order not in summary:
        gaps.append(f"the order {convo.order}")
    if not re.search(r"\bFound\b", summary):
        gaps.append("what was found")
    reason = _squash(str(handoff.get("reason") or ""))
    if not reason or reason not in summary:
        gaps.append("the reason")
    return gaps


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("convo", [_param(c) for c in CONVERSATIONS])
async def test_conversation(convo: Conversation, guide: Guide, containment: Containment) -> None:
    outcome = Outcome(convo.name, convo.intent, convo.channel, convo.policy_allows_containment)
    problems: list[str] = []
    said: list[str] = []
    if convo.fault:
        guide.faults.add(**convo.fault)
    try:
        for number, turn in enumerate(convo.turns):
            said.append(turn.say)
            response = await guide.say(
                convo.conversation_id, convo.channel, convo.customer, turn.say
            )
            if response.status_code != 200:
                problems.append(f"turn {number + 1}: HTTP {response.status_code} {response.text}")
                outcome.errored = True
                break
            answer = response.json()
            problems += turn_problems(convo, number, turn, answer)
            if answer.get("handoff") is not None:
                outcome.handed_off = True
                gaps = summary_gaps(convo, said, answer["handoff"])
                outcome.summaries.append(gaps)
                problems += [f"turn {number + 1}: the hand-off summary lacks {g}" for g in gaps]
    finally:
        if convo.fault:
            guide.faults.clear()
        outcome.failed = bool(problems)
        containment.record(outcome)
    assert not problems, f"{convo.name}:\n" + "\n".join(problems)


def _answer(**fields: Any) -> dict[str, Any]:
    base = {"reply": "ok", "intent": "other", "links": [], "quickReplies": [], "state": {}}
    return {**base, "handoff": None, **fields}


def test_the_checks_catch_a_long_sms_a_cut_link_and_an_invented_one() -> None:
    convo = next(c for c in CONVERSATIONS if c.channel == "sms")
    link = world.deep_link("#5101", "10024")
    made_up = "https://juniper-supply.loopreturns.com/#/link/made-up"
    answer = _answer(reply="x" * 321 + " " + link[:-3], links=[link, made_up])
    problems = turn_problems(convo, 0, Turn("hi", {"links": 1}), answer)
    assert any(f"SMS reply of {len(answer['reply'])} characters" in p for p in problems)
    assert any(f"link {link} is not whole" in p for p in problems)
    assert any("links the world does not hold" in p for p in problems)
    assert any("2 links, expected 1" in p for p in problems)
    assert not turn_problems(convo, 0, Turn("hi", {"links": 1}), _answer(reply=link, links=[link]))


def test_a_summary_without_the_story_is_incomplete() -> None:
    convo = next(c for c in CONVERSATIONS if c.order == "#5101")
    said = ["I want to return\n order 5101", "10025"]
    full = {
        "summary": "Hand-off: zip wrong twice.\nAsked: I want to return order 5101 | 10025\n"
        "Gave: order #5101.\nFound: Loop refused it.",
        "reason": "zip wrong twice",
        **{k: "" for k in ("queue", "priority", "facts", "rule")},
    }
    assert summary_gaps(convo, said, full) == []
    bare = {**full, "summary": "Hand-off."}
    assert summary_gaps(convo, said, bare) == [
        "the first message",
        "the order #5101",
        "what was found",
        "the reason",
    ]
    assert summary_gaps(convo, said, {"summary": full["summary"]})[:2] == ["facts", "priority"]


def test_the_script_covers_every_flow_channel_and_failure_path() -> None:
    names = [c.name for c in CONVERSATIONS]
    assert len(names) == len(set(names)), "conversation names must be unique"
    assert len(CONVERSATIONS) >= 60
    assert {c.intent for c in CONVERSATIONS} == set(INTENTS)
    assert {c.channel for c in CONVERSATIONS} == set(CHANNELS)
    for intent in INTENTS:
        for channel in ("chat", "sms"):
            assert any(c.intent == intent and c.channel == channel for c in CONVERSATIONS), (
                intent,
                channel,
            )
    # Failure paths the issue names, each at least once.
    assert any(c.fault for c in CONVERSATIONS)
    assert any("wrong-zip-twice" in n for n in names)
    assert any(c.intent == "agent" for c in CONVERSATIONS)
    assert sum(not c.policy_allows_containment for c in CONVERSATIONS) >= 15
    spanish = re.compile(r"[¿¡ñáéíóú]|\b(hola|pedido|devol\w*)\b", re.IGNORECASE)
    assert sum(any(spanish.search(t.say) for t in c.turns) for c in CONVERSATIONS) >= 4


def test_every_customer_is_one_the_world_knows() -> None:
    known = world.known_emails()
    for convo in CONVERSATIONS:
        unknown = set(convo.customer["emails"]) - known
        assert not unknown, f"{convo.name}: {unknown} not in world.py (add it to STRANGERS?)"


def test_the_expected_links_and_orders_exist_in_the_world() -> None:
    ids = {r.id for p in world.PEOPLE_LIST for r in p.returns}
    for convo in CONVERSATIONS:
        for turn in convo.turns:
            if "return_link_for" in turn.expect:
                world.order(turn.expect["return_link_for"])
            for code in turn.expect.get("tracking_links", []):
                world.tracking_page(code)
            assert set(turn.expect.get("status_pages", [])) <= ids, convo.name


def test_the_world_is_a_valid_sandbox_data_file(world_file: Path) -> None:
    loaded = load_world(world_file)
    assert len(loaded.returns) == sum(len(p.returns) for p in world.PEOPLE_LIST)
    assert len(loaded.orders) == sum(len(p.orders) for p in world.PEOPLE_LIST)
    emails = [e for p in world.PEOPLE_LIST for e in p.emails]
    assert len(emails) == len(set(emails)), "each person has addresses of their own"
    orders = [o["name"] for o in loaded.orders]
    assert len(orders) == len(set(orders))


def test_the_world_dates_follow_now(world_file: Path) -> None:
    """The exception cases depend on these distances; a drift would test the wrong rule."""
    raw = json.loads(world_file.read_text(encoding="utf-8"))
    now = datetime.now(UTC)
    orders = {o["name"]: o for o in raw["orders"]}

    def delivered_days(name: str) -> int:
        moment = datetime.fromisoformat(orders[name]["shipments"][0]["deliveredAt"])
        return (now - moment).days

    assert delivered_days("#5101") == 10
    assert delivered_days("#5601") == 33
    assert delivered_days("#5611") == 60
    assert delivered_days("#5621") == 41
    assert delivered_days("#5651") == 20
    assert orders["#5661"]["shipments"][0]["deliveredAt"] is None
    assert orders["#5662"]["shipments"] == []
    titles = [i["title"] for i in orders["#5631"]["line_items"]]
    assert titles and all("final sale" in t.lower() for t in titles)
