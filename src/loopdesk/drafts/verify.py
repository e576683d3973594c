"""After a submit whose outcome is unknown (a 5xx, a timeout), read the draft.

The same conventions as `actions.verify`: the draft submitted (it names its return) is
applied, and answered as a submit that succeeded; not submitted after a 500, 502 or 503
(Loop answered, so the write is over) is not applied; not submitted after a 504 or no
answer at all stays unknown, since Loop may still be submitting it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from loopdesk.actions.verify import Verification, applied, not_applied, unknown, write_is_over
from loopdesk.domain.drafts import Draft
from loopdesk.errors import LoopError
from loopdesk.loop.drafts import LoopDraftsClient

SUBMITTED = "submitted"


def submit_verdict(draft: Draft, answer: dict[str, Any], *, write_over: bool) -> Verification:
    """`answer`: what the submit answers when the draft turns out submitted."""
    if draft.return_id is not None:
        state = draft.state or SUBMITTED
        return applied(f"the draft is {state}, as return {draft.return_id}", answer)
    if draft.state == SUBMITTED:
        return unknown("the draft is submitted, but Loop names no return for it")
    if write_over:
        return not_applied(f"the draft is still {draft.state or 'open'}")
    return unknown(
        f"the draft is still {draft.state or 'open'}, but Loop may still be submitting it "
        "(it did not answer)"
    )


@dataclass
class SubmitCheck:
    client: LoopDraftsClient
    draft_id: str
    # The submit's answer for the draft read afterwards (its view, with the status page).
    answer: Callable[[Draft], Awaitable[dict[str, Any]]]
    draft: Draft | None = field(default=None, init=False)  # as read after the failure

    async def before(self) -> None:
        return None

    async def after(self, exc: LoopError) -> Verification:
        self.draft = await self.client.get(self.draft_id)
        body = await self.answer(self.draft) if self.draft.return_id is not None else {}
        return submit_verdict(self.draft, body, write_over=write_is_over(exc))
