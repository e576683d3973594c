"""A conversation's state between turns, kept in the store as JSON.

What the guide must remember so any worker can take the next message: the topic in
progress and what it asked for, the slots the customer filled (order, ZIP/email/phone),
attempts (wrong verifications, messages not understood), what it already told and did,
and the customer's own words, so a hand-off loses nothing the customer gave.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Awaiting = Literal["", "order", "verification", "which_return", "intent", "draft"]
# What the guide asked last while it builds a return with the customer (`flows.create_return`).
DraftStep = Literal["items", "reason", "outcome", "variant", "method", "confirm"]
MAX_KEPT = 30  # customer messages, findings and actions kept for the summary
MAX_TEXT = 1000  # characters of one customer message kept


class HandoffRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    reason: str
    summary: str
    queue: str
    priority: int
    facts: dict[str, bool | int | str] = Field(default_factory=dict)
    rule: str = ""
    at: str = ""


class DraftProgress(BaseModel):
    """A return being built in the conversation. Loop's draft is the source of truth
    (what it holds, what its links allow); this is only where the conversation is:
    the question pending, the item it is about, the items chosen but not added yet,
    and the customer's choices Loop takes later (refund or store credit)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    order_name: str
    # The ZIP, email or phone the draft was opened with ("start over" opens another).
    answer: str = ""
    step: DraftStep = "items"
    # The returning item the question is about (reason, outcome, variant).
    item: str = ""
    # Order line items the customer chose, to add once the current one is settled.
    queue: list[str] = Field(default_factory=list)
    # Returning items settled, oldest first: what "undo" reopens.
    settled: list[str] = Field(default_factory=list)
    # refund | gift (store credit): Loop takes it for the whole return, after finalize.
    credit_type: str = ""
    # Returning items whose product has no variant in stock: exchange is not offered.
    no_exchange: list[str] = Field(default_factory=list)
    # The return method chosen (its id), for the summary before the submit.
    method: str = ""


class ConversationState(BaseModel):
    model_config = ConfigDict(extra="ignore")

    topic: str = ""
    awaiting: Awaiting = ""
    order_name: str = ""
    # The last ZIP, email or phone the customer gave to prove the order is theirs.
    verification: str = ""
    attempts: dict[str, int] = Field(default_factory=dict)
    last_intent: str = ""
    told: list[str] = Field(default_factory=list)
    links: list[str] = Field(default_factory=list)
    asked: list[str] = Field(default_factory=list)
    found: list[str] = Field(default_factory=list)
    did: list[str] = Field(default_factory=list)
    # The quick replies of the last answer: an SMS customer may text a number for one.
    offered: list[str] = Field(default_factory=list)
    handoff: HandoffRecord | None = None
    draft: DraftProgress | None = None
    turns: int = 0

    def bump(self, attempt: str) -> int:
        self.attempts[attempt] = self.attempts.get(attempt, 0) + 1
        return self.attempts[attempt]

    def reset(self, attempt: str) -> None:
        self.attempts.pop(attempt, None)

    def note(self, kind: Literal["told", "links", "found", "did"], entry: str) -> None:
        """Remember `entry` once (the newest kept last, at most MAX_KEPT)."""
        items: list[str] = getattr(self, kind)
        if entry in items:
            items.remove(entry)
        items.append(entry)
        del items[:-MAX_KEPT]

    def heard(self, text: str) -> None:
        self.asked.append(text.strip()[:MAX_TEXT])
        del self.asked[:-MAX_KEPT]

    def to_json(self) -> dict[str, object]:
        return self.model_dump(mode="json")
