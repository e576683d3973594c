"""Typed errors shared by every layer, and their one JSON shape over HTTP.

Each error knows its HTTP status and machine code, so surfaces map errors to
`{"error": {"code", "message", "details"}}` in one place.
"""

from __future__ import annotations

from typing import Any


class LoopdeskError(Exception):
    """Base of every error loopdesk raises on purpose."""

    code = "internal_error"
    http_status = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidInput(LoopdeskError):
    """The caller's input is unusable (missing email, bad field...)."""

    code = "invalid_input"
    http_status = 422


class Unauthorized(LoopdeskError):
    code = "unauthorized"
    http_status = 401


class NotFound(LoopdeskError):
    code = "not_found"
    http_status = 404


class ConfigError(LoopdeskError):
    """A settings, policy or data file is unusable; raised at start-up."""

    code = "config_error"


class InvalidUpstreamData(LoopdeskError):
    """An upstream body that does not have the shape the API documents."""

    code = "invalid_upstream_data"
    http_status = 502


class LoopError(LoopdeskError):
    """Loop (Returns or Order Tracking) answered with an error.

    `status` is the upstream HTTP status (None when no response arrived),
    `body` the decoded upstream body (secrets never appear in it: Loop does
    not echo tokens).
    """

    code = "loop_error"
    http_status = 502

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: Any = None,
        endpoint: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        merged = {"upstreamStatus": status, "endpoint": endpoint, **(details or {})}
        super().__init__(message, details={k: v for k, v in merged.items() if v is not None})
        self.status = status
        self.body = body
        self.endpoint = endpoint


class LoopUnavailable(LoopError):
    """Timeouts, connection failures and 5xx that outlived the retries."""

    code = "loop_unavailable"
    http_status = 503


class LoopRateLimited(LoopError):
    """429 from Loop that outlived the retries."""

    code = "loop_rate_limited"
    http_status = 503

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after
        if retry_after is not None:
            self.details["retryAfter"] = retry_after


class LoopAuthError(LoopError):
    """401/403: the configured token is wrong or lacks a scope."""

    code = "loop_unauthorized"
    http_status = 502


class LoopNotFound(LoopError):
    code = "loop_not_found"
    http_status = 404


class LoopRejected(LoopError):
    """Loop refused the request (4xx other than 401/404/422), with Loop's message."""

    code = "loop_rejected"
    http_status = 400


class LoopValidationError(LoopError):
    """422 from Loop: `errors` is the peer's structured list `[{"message": ...}]`."""

    code = "loop_validation_error"
    http_status = 422

    def __init__(self, message: str, *, errors: list[dict[str, Any]], **kw: Any) -> None:
        super().__init__(message, details={"errors": errors}, **kw)
        self.errors = errors


class DraftRejected(LoopValidationError):
    """422 from Loop's Draft Returns API. `errors` is the peer's structured list: entries
    read from Loop's `errors` array keep their `code` (None when Loop sent none); a body
    without that array gives one entry with only `message`."""

    code = "loop_draft_rejected"


class DraftStepNotAllowed(LoopdeskError):
    """The draft's `links` do not offer this step now (`details.nextSteps` lists those
    that are)."""

    code = "draft_step_not_allowed"
    http_status = 409


class DraftsDisabled(LoopdeskError):
    """The merchant turned creating returns in the conversation off (policy file
    `[returns] create_in_conversation = false`): only return links are offered."""

    code = "drafts_disabled"
    http_status = 403


class ConversationConflict(LoopdeskError):
    """Two messages of one conversation were answered at once: the later is not saved
    over the earlier; the help desk sends it again."""

    code = "conversation_conflict"
    http_status = 409


class IdempotencyConflict(LoopdeskError):
    """Another request with this `Idempotency-Key` is still running: try again shortly."""

    code = "idempotency_conflict"
    http_status = 409


class IdempotencyOutcomeUnknown(IdempotencyConflict):
    """An earlier request with this key never finished (the process stopped mid-action):
    whether Loop applied it is unknown, so it is not run again under this key."""

    code = "idempotency_outcome_unknown"


class IdempotencyMismatch(LoopdeskError):
    """The key was first used for another request (action or inputs differ)."""

    code = "idempotency_mismatch"
    http_status = 422
