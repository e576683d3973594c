"""What an action answers over HTTP, whether Loop agreed or refused."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from loopdesk.errors import LoopdeskError, LoopError

INTERNAL_ERROR = {"code": "internal_error", "message": "internal error"}


@dataclass(frozen=True)
class ActionOutcome:
    status: int
    body: dict[str, Any]
    action: str = ""  # the audited action's name, for metrics; not part of the answer
    replayed: bool = False  # the answer kept under an idempotency key, Loop not called

    @property
    def ok(self) -> bool:
        return self.status < 400

    @classmethod
    def from_error(cls, exc: LoopdeskError, action: str = "") -> ActionOutcome:
        body = exc.to_body()
        if loop_may_have_applied(exc):
            # Say so to the caller too, whatever the error: retrying blindly may repeat it.
            body["error"]["details"] = {**body["error"]["details"], "outcomeUnknown": True}
        return cls(exc.http_status, body, action)

    @classmethod
    def unexpected(cls, action: str = "") -> ActionOutcome:
        """A failure of our own after Loop was called: Loop may have applied the call."""
        error = {**INTERNAL_ERROR, "details": {"outcomeUnknown": True}}
        return cls(500, {"error": error}, action)

    @property
    def applied_or_unknown(self) -> bool:
        """True unless Loop surely did not apply the call (a refusal, never reached)."""
        if self.ok:
            return True
        details = self.body.get("error", {}).get("details", {})
        return bool(details.get("outcomeUnknown"))

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "body": self.body}

    @classmethod
    def from_json(cls, data: dict[str, Any], action: str = "") -> ActionOutcome:
        return cls(int(data["status"]), dict(data["body"]), action)

    def as_replay(self) -> ActionOutcome:
        return replace(self, replayed=True)


def loop_may_have_applied(exc: LoopdeskError) -> bool:
    """Whether a failed call may have changed something in Loop.

    The upstream layer marks `outcomeUnknown` where a write may have landed (a
    timeout after the request was sent, a gateway error); any other `LoopError` is
    Loop refusing (4xx, 429) or never reached. Other errors come after Loop
    answered 2xx (a body we could not read), so Loop did act.
    """
    if exc.details.get("outcomeUnknown"):
        return True
    return not isinstance(exc, LoopError)
