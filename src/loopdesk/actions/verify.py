"""After a write whose outcome is unknown, ask Loop with reads whether it landed.

A 5xx or a read timeout on a POST leaves Loop's side unknown (`details.outcomeUnknown`,
set by `loop.http`). Where Loop's state can tell, the runner reads it before answering,
the way a payments client looks a charge up after a timeout:

| action                   | read                                   | applied when               |
|--------------------------|----------------------------------------|----------------------------|
| note.add                 | the notes, before the write and after  | a new note has the content |
| return.cancel/close/flag | the return's details, before and after | state is the action's own  |
| return.process           | the return's details, before and after | open before, closed after  |
| allowlist.add            | the allowlist's pages, newest first    | an entry has type and value|
| return-link              | none: the request is repeated once     | the repeat succeeds        |

Not applied needs the write's effect absent (no such note or entry on any page; the
return still in the state the action moves from) and the write over: Loop answered 500,
502 or 503. After a 504 or a timeout Loop may still be applying it while we look, so
absence proves nothing there. A return that was, before the write, in a state Loop
refuses the action from was not changed either. `process` left open is never "not
applied": Loop processes asynchronously, and the return may be queued. Anything else (a
read fails, a state no rule covers) leaves the outcome unknown.

The verdicts are pure functions; the checks around them only do the reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, TypeGuard

from loopdesk.errors import InvalidUpstreamData, LoopdeskError, LoopError
from loopdesk.loop.returns import LoopReturnsClient


class Verdict(StrEnum):
    APPLIED = "applied"
    NOT_APPLIED = "not_applied"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Verification:
    verdict: Verdict
    reason: str
    # The action's answer when it was applied (the allowlist entry found, ...).
    body: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"result": self.verdict.value, "reason": self.reason}


def applied(reason: str, body: dict[str, Any]) -> Verification:
    return Verification(Verdict.APPLIED, reason, body)


def not_applied(reason: str) -> Verification:
    return Verification(Verdict.NOT_APPLIED, reason)


def unknown(reason: str) -> Verification:
    return Verification(Verdict.UNKNOWN, reason)


@dataclass(frozen=True)
class VerifyPolicy:
    # Loop answered the write with an error; give it a moment to finish whatever it was
    # doing before looking (a write landing later than this would be missed).
    settle_s: float = 1.0
    # The reads after the failure, in all (the upstream layer retries each GET itself).
    timeout_s: float = 20.0
    # The notes read before a note is added: a slow read never holds the write long.
    before_timeout_s: float = 5.0
    # Allowlist pages read (100 entries each) before giving up as unknown.
    max_allowlist_pages: int = 20


def needs_check(exc: LoopdeskError | None) -> TypeGuard[LoopError]:
    """Only Loop's own errors flagged `outcomeUnknown`; a failure of ours after Loop
    answered 2xx means Loop did act, and stays unknown without reads."""
    return isinstance(exc, LoopError) and bool(exc.details.get("outcomeUnknown"))


def write_is_over(exc: LoopError) -> bool:
    """Loop (or its gateway) answered, so the write is not still under way: 500, 502,
    503. A 504 or no answer at all (a timeout) may leave Loop still applying it."""
    return exc.status is not None and exc.status != 504


# --- verdicts (pure) ---------------------------------------------------------------------


def note_verdict(
    before: list[Any] | None,
    after: list[Any],
    content: str,
    answer: dict[str, Any],
    *,
    write_over: bool,
) -> Verification:
    """`before`: the notes read before the write (None: that read failed)."""
    matching = [n for n in after if _note_content(n) == content.strip()]
    if before is not None:
        known = {_note_key(n) for n in before}
        if any(_note_key(n) not in known for n in matching):
            return applied("a new note with this content is on the return", answer)
    elif matching:
        return unknown(
            "a note with this content is on the return, but the notes could not be "
            "read before the write, so whether it is this request's is unknown"
        )
    if write_over:
        return not_applied("no new note with this content is on the return")
    return unknown(
        "no new note with this content yet, but Loop may still be adding it (it did not answer)"
    )


@dataclass(frozen=True)
class StateRule:
    target: str  # the state the action moves a return to
    moves_from: tuple[str, ...]  # the states Loop accepts it from; it refuses the rest
    # Loop queues it: a return not moved yet may still move.
    asynchronous: bool = False


# Reference section 3.
STATE_RULES: dict[str, StateRule] = {
    "cancel": StateRule("cancelled", ("open",)),
    "close": StateRule("closed", ("open", "review")),
    "flag": StateRule("review", ("open",)),
    "process": StateRule("closed", ("open",), asynchronous=True),
}


def state_verdict(
    action: str, before: str | None, after: Any, answer: dict[str, Any], *, write_over: bool
) -> Verification:
    """`before`: the return's state read before the write (None: that read failed)."""
    rule = STATE_RULES[action]
    if before is not None and before not in rule.moves_from:
        # Loop refuses the action from there (a state error): nothing was applied.
        return not_applied(f"the return was {before} before, from where Loop refuses to {action}")
    if after == rule.target:
        if rule.asynchronous and before is None:
            # Closed by this request's processing, or by a close (no refunds, no
            # exchanges): the state alone cannot tell them apart.
            return unknown(f"the return is {after} now, but its state before was not read")
        return applied(f"the return is {after} now", answer)
    if after in rule.moves_from and before in (None, after):
        if rule.asynchronous:
            return unknown(f"the return is still {after}: Loop processes returns asynchronously")
        if write_over:
            return not_applied(f"the return is still {after}")
        return unknown(f"the return is still {after}, but Loop may still be moving it")
    return unknown(f"the return is {after} now, which this action does not lead to")


def find_allowlist_entry(entries: Iterable[Any], entry_type: str, value: str) -> Any:
    """The entry with this type and value (emails compared without case), or None."""
    wanted = value.strip()
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("type") != entry_type:
            continue
        have = str(entry.get("value", "")).strip()
        if have == wanted or (entry_type == "email" and have.casefold() == wanted.casefold()):
            return entry
    return None


def allowlist_answer(entry: dict[str, Any]) -> dict[str, Any]:
    """What `POST /v1/actions/allowlist` answers for an entry."""
    return {"id": str(entry["id"]), "type": entry["type"], "value": entry["value"]}


def allowlist_verdict(found: Any, *, complete: bool, write_over: bool) -> Verification:
    if found is not None:
        reason = "the allowlist has an entry with this type and value"
        return applied(reason, allowlist_answer(found))
    if not complete:
        return unknown("the allowlist is longer than the pages read, none of which has the entry")
    if write_over:
        return not_applied("no allowlist entry has this type and value")
    return unknown("no such allowlist entry yet, but Loop may still be adding it")


# --- the checks: reads around one write --------------------------------------------------


class WriteCheck(Protocol):
    async def before(self) -> None:
        """Read what the verdict compares against; must never raise."""

    async def after(self, exc: LoopError) -> Verification:
        """Read Loop after `exc`; may raise (the runner then says unknown)."""


@dataclass
class NoteCheck:
    loop: LoopReturnsClient
    return_id: str
    content: str
    answer: dict[str, Any]
    policy: VerifyPolicy
    notes_before: list[Any] | None = field(default=None, init=False)

    async def before(self) -> None:
        try:
            async with asyncio.timeout(self.policy.before_timeout_s):
                self.notes_before = await self.loop.list_notes(self.return_id)
        except Exception:
            # No baseline: only the note's absence can be told after a failure.
            self.notes_before = None

    async def after(self, exc: LoopError) -> Verification:
        notes = await self.loop.list_notes(self.return_id)
        return note_verdict(
            self.notes_before, notes, self.content, self.answer, write_over=write_is_over(exc)
        )


@dataclass
class ReturnStateCheck:
    loop: LoopReturnsClient
    return_id: str
    action: str
    answer: dict[str, Any]
    policy: VerifyPolicy
    state_before: str | None = field(default=None, init=False)

    async def before(self) -> None:
        try:
            async with asyncio.timeout(self.policy.before_timeout_s):
                state = (await self.loop.return_details(self.return_id)).get("state")
        except Exception:
            return  # no baseline: the state after is judged alone
        self.state_before = state if isinstance(state, str) else None

    async def after(self, exc: LoopError) -> Verification:
        details = await self.loop.return_details(self.return_id)
        return state_verdict(
            self.action,
            self.state_before,
            details.get("state"),
            self.answer,
            write_over=write_is_over(exc),
        )


@dataclass
class AllowlistCheck:
    loop: LoopReturnsClient
    entry_type: str
    value: str
    policy: VerifyPolicy

    async def before(self) -> None:
        return None

    async def after(self, exc: LoopError) -> Verification:
        # Laravel pages in id order: after page 1 (which says how many there are) the
        # newest entries, where this one would be, come first.
        first = await self.loop.list_allowlist(1)
        found = find_allowlist_entry(_page_items(first), self.entry_type, self.value)
        last = first.get("last_page")
        if not isinstance(last, int) or isinstance(last, bool):
            raise InvalidUpstreamData("the allowlist page has no last_page")
        pages = list(range(last, 1, -1))
        to_read = pages[: max(0, self.policy.max_allowlist_pages - 1)]
        for number in to_read:
            if found is not None:
                break
            page = await self.loop.list_allowlist(number)
            found = find_allowlist_entry(_page_items(page), self.entry_type, self.value)
        complete = found is not None or len(to_read) == len(pages)
        return allowlist_verdict(found, complete=complete, write_over=write_is_over(exc))


@dataclass
class RepeatCheck:
    """return-link: a deep link made twice is harmless (the same order and ZIP give
    the same link), and Loop has no read that lists links made. So the request is
    repeated once; if that fails too, a link nobody received changes nothing in
    Loop, and the key is let go like for a failure that never landed."""

    call: Callable[[], Awaitable[dict[str, Any]]]

    async def before(self) -> None:
        return None

    async def after(self, exc: LoopError) -> Verification:
        try:
            body = await self.call()
        except LoopdeskError as again:
            return not_applied(
                f"repeated once, which failed too ({again.code}); a link nobody "
                "received changes nothing in Loop"
            )
        return applied("repeated once, which succeeded (making a link twice is harmless)", body)


def _page_items(page: dict[str, Any]) -> list[Any]:
    items = page.get("data")
    if not isinstance(items, list):
        raise InvalidUpstreamData("the allowlist page has no data list")
    return items


def _note_content(note: Any) -> str | None:
    if not isinstance(note, dict) or not isinstance(note.get("content"), str):
        return None
    content: str = note["content"]
    return content.strip()  # Loop trims what it stores


def _note_key(note: Any) -> Any:
    """A note's identity: its id, else what it says and when."""
    if isinstance(note, dict) and note.get("id") is not None:
        return ("id", str(note["id"]))
    if isinstance(note, dict):
        return ("at", _note_content(note), str(note.get("created_at")))
    return ("raw", repr(note))
