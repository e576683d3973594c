"""What an action answers over HTTP, whether Loop agreed or refused."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from loopdesk.actions.verify import Verdict, Verification
from loopdesk.errors import LoopdeskError, LoopError

INTERNAL_ERROR = {"code": "internal_error", "message": "internal error"}


@dataclass(frozen=True)
class ActionOutcome:
    status: int
    body: dict[str, Any]
    action: str = ""  # the audited action's name, for metrics; not part of the answer
    replayed: bool = False  # the answer kept under an idempotency key, Loop not called
    # For the audit row only: Loop's first error and what the reads after it showed.
    trail: dict[str, Any] | None = field(default=None, compare=False)

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

    def audit_json(self) -> dict[str, Any]:
        """What the audit row keeps: the answer, and the trail that led to it."""
        return {**self.to_json(), **(self.trail or {})}

    def verified(self, check: Verification) -> ActionOutcome:
        """This failure (`outcomeUnknown`) as the reads after it tell it.

        Applied: the action's normal answer with 200, saying it was verified after an
        upstream error. Not applied: the error without `outcomeUnknown`, `applied: false`
        (so an idempotency key is let go). Unknown: the error as it was, with the reason.
        """
        error = self.body["error"]
        trail = {"upstreamError": error, "verification": check.to_json()}
        if check.verdict is Verdict.APPLIED and check.body is not None:
            note = {
                **check.to_json(),
                "afterError": {
                    "code": error["code"],
                    "upstreamStatus": error["details"].get("upstreamStatus"),
                },
            }
            body = {**check.body, "verification": note}
            return ActionOutcome(200, body, self.action, trail=trail)
        details = {**error["details"], "verification": check.to_json()}
        if check.verdict is Verdict.NOT_APPLIED:
            details.pop("outcomeUnknown", None)
            details["applied"] = False
        failed = {"error": {**error, "details": details}}
        return ActionOutcome(self.status, failed, self.action, trail=trail)

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
