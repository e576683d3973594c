"""How an upstream error body reads to a person, the way Gladly's Loop app reads it.

One source of truth for the peer's rules (conformance `actions/*/_test_`):
- HTTP 422 becomes a structured list `[{"message": ...}]`, taking Laravel's top-level
  `message` first, else `errors.message`;
- any other failure becomes `unable to execute action: '<upstream message>'`, where the
  upstream message is the first entry of an `errors` list, else `message`.
"""

from __future__ import annotations

from typing import Any

ACTION_FAILURE_TEMPLATE = "unable to execute action: '{}'"


def upstream_message(body: Any, *, fallback: str = "") -> str:
    """The most specific human message in an upstream error body."""
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return _text(errors[0])
        if isinstance(errors, dict) and errors:
            if "message" in errors:
                return _text(errors["message"])
            # Laravel validation: {"field": ["msg", ...]}; take the first field's first message.
            first = errors[sorted(errors)[0]]
            return _text(first[0] if isinstance(first, list) and first else first)
        for key in ("message", "content", "error"):
            value = body.get(key)
            if isinstance(value, dict):
                return upstream_message(value, fallback=fallback)
            if value not in (None, ""):
                return _text(value)
    elif isinstance(body, str) and body.strip():
        return _text(body.strip())
    return fallback


def validation_errors(body: Any, *, fallback: str = "") -> list[dict[str, str]]:
    """The peer's structured list for a 422 body."""
    message = ""
    if isinstance(body, dict):
        top = body.get("message")
        nested = body.get("errors")
        if top not in (None, ""):
            message = _text(top)
        elif isinstance(nested, dict) and nested.get("message") not in (None, ""):
            message = _text(nested["message"])
    return [{"message": message or upstream_message(body, fallback=fallback)}]


def action_failure_message(body: Any, *, fallback: str = "") -> str:
    return ACTION_FAILURE_TEMPLATE.format(upstream_message(body, fallback=fallback))


def _text(value: Any) -> str:
    """The message as text; NUL characters dropped (no store or help desk keeps them)."""
    text = value if isinstance(value, str) else str(value)
    return text.replace("\x00", "")
