"""A conversation's state between turns, kept in the store as JSON.

What the guide must remember so any worker can take the next message: the topic in
progress and what it asked for, the slots the customer filled (order, ZIP/email/phone),
attempts (wrong verifications, messages not understood), what it already told and did,
and the customer's own words, so a hand-off loses nothing the customer gave.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Awaiting = Literal["", "order", "verification", "which_return", "intent"]
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
