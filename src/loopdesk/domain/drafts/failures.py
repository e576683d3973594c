"""How a failed draft call reads, by the peer's rules (reference: "Error mapping")."""

from __future__ import annotations

from typing import Any

from loopdesk.domain.upstream_errors import ACTION_FAILURE_TEMPLATE

# The peer's wording (reference: "Error mapping").
UNAUTHORIZED_MESSAGE = (
    "unauthorized: the Loop API token is missing a required scope "
    "(Draft Returns read+write, or Returns read)"
)
DEFAULT_REJECTION = "the request was rejected by Loop"
DEFAULT_FAILURE = "unexpected error from Loop"
NO_RETURN_FOUND = "no return found: {}"
NO_RETURNING_ITEM = (
    "the item was added but Loop's response contained no returning item for order line item {}"
)
LOOKUP_NEEDS_AN_ID = "a return lookup requires at least one of: returnId, orderId, or orderName"


def error_list(body: Any) -> list[Any] | None:
    errors = body.get("errors") if isinstance(body, dict) else None
    return errors if isinstance(errors, list) and errors else None


def draft_errors(body: Any) -> list[dict[str, str | None]]:
    """A 422 body as the peer's structured list (reference rule 3).

    One entry per element of an `errors` array, keeping `code` (None when absent), with
    `message` = the element's message, else its code, else the default. Without such an
    array (an empty one included: the answer must say something), a single entry with
    only `message`: the body's `message`, else `error.message`, else the default.
    """
    elements = error_list(body)
    if elements is None:
        return [{"message": _body_message(body) or DEFAULT_REJECTION}]
    entries: list[dict[str, str | None]] = []
    for element in elements:
        if isinstance(element, dict):
            code = _plain(element.get("code")) or None
            message = _plain(element.get("message")) or code or DEFAULT_REJECTION
        else:
            code, message = None, _plain(element) or DEFAULT_REJECTION
        entries.append({"code": code, "message": message})
    return entries


def draft_failure_text(body: Any) -> str:
    """X in the peer's `unable to execute action: '<X>'` (reference rule 4).

    The first `errors[]` element's message (its code when the message is empty; the
    element itself when it is text), else the body's `message`, else `error.message`,
    else the default. A short plain-text body is its own message.
    """
    elements = error_list(body)
    if elements is not None:
        first = elements[0]
        if isinstance(first, dict):
            text = _plain(first.get("message")) or _plain(first.get("code"))
        else:
            text = _plain(first)
        if text:
            return text
    return _body_message(body) or DEFAULT_FAILURE


def action_failure(text: str) -> str:
    return ACTION_FAILURE_TEMPLATE.format(text)


def _body_message(body: Any) -> str:
    if isinstance(body, str):
        return _plain(body.strip())
    if not isinstance(body, dict):
        return ""
    message = _plain(body.get("message"))
    if message:
        return message
    error = body.get("error")
    return _plain(error.get("message")) if isinstance(error, dict) else ""


def _plain(value: Any) -> str:
    """A message as text ("" when absent); NUL characters dropped."""
    if value is None or isinstance(value, dict | list):
        return ""
    text = value if isinstance(value, str) else str(value)
    return text.replace("\x00", "")
