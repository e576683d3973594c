"""Which email addresses a lookup uses: the profile's, primary first, at most N."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from loopdesk.errors import InvalidInput

# RFC 3696 (errata 1690): 64 for the local part + "@" + 255 for the domain.
EMAIL_MAX_LENGTH = 320

# The peer's wording, so a help desk shows the same message either way.
NO_EMAIL_MESSAGES = {
    "returns": (
        "unable to retrieve loop return data"
        " since the customer profile does not have any email addresses"
    ),
    "orders": (
        "unable to retrieve order tracking data"
        " since the customer profile does not have any email addresses"
    ),
}


def email_problem(text: str) -> str | None:
    """Why `text` cannot be an email address to look up, or None when it can.

    The one rule every surface applies: a bounded length (a database column and Loop's
    query both hold at most this), no whitespace or control characters (PostgreSQL
    refuses NUL), and a local part and a domain around the last "@".
    """
    # Lower-cased too: that is the form stored, and some letters grow ("İ" is two).
    if len(text) > EMAIL_MAX_LENGTH or len(text.lower()) > EMAIL_MAX_LENGTH:
        return f"an email address has at most {EMAIL_MAX_LENGTH} characters"
    if any(c.isspace() or unicodedata.category(c) in ("Cc", "Cs") for c in text):
        return "an email address has no spaces or control characters"
    local, at, domain = text.rpartition("@")
    if not (at and local and domain):
        return "an email address looks like name@domain"
    return None


def usable_emails(emails: Iterable[str | None], *, primary: str | None = None) -> list[str]:
    """Every distinct address (ignoring case), primary first; blanks skipped.

    Raises `InvalidInput` for an address that is not one, and (with the peer's
    message) when none remains, so no upstream request is ever made for a profile
    without email.
    """
    seen: set[str] = set()
    chosen: list[str] = []
    for raw in [primary, *emails]:
        email = (raw or "").strip()
        if not email or email.lower() in seen:
            continue
        problem = email_problem(email)
        if problem is not None:
            shown = email if len(email) <= 80 else email[:80] + "..."
            raise InvalidInput(
                f"not an email address: {shown!r} ({problem})", details={"field": "email"}
            )
        seen.add(email.lower())
        chosen.append(email)
    if not chosen:
        raise InvalidInput(NO_EMAIL_MESSAGES["returns"], details={"field": "email"})
    return chosen


def profile_emails(
    emails: Iterable[str | None], *, primary: str | None = None, limit: int = 5
) -> list[str]:
    """The addresses to look up: `usable_emails`, at most `limit`."""
    return usable_emails(emails, primary=primary)[:limit]
