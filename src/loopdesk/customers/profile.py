"""Which email addresses a lookup uses: the profile's, primary first, at most N."""

from __future__ import annotations

from collections.abc import Iterable

from loopdesk.errors import InvalidInput

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


def profile_emails(
    emails: Iterable[str | None], *, primary: str | None = None, limit: int = 5
) -> list[str]:
    """The addresses to look up: primary first, de-duplicated ignoring case, at most `limit`.

    Raises `InvalidInput` (with the peer's message) when no usable address remains, so
    no upstream request is ever made for a profile without email.
    """
    seen: set[str] = set()
    chosen: list[str] = []
    for raw in [primary, *emails]:
        email = (raw or "").strip()
        if not email or email.lower() in seen:
            continue
        if not _looks_like_email(email):
            raise InvalidInput(f"not an email address: {email!r}", details={"field": "email"})
        seen.add(email.lower())
        chosen.append(email)
        if len(chosen) == limit:
            break
    if not chosen:
        raise InvalidInput(NO_EMAIL_MESSAGES["returns"], details={"field": "email"})
    return chosen


def _looks_like_email(text: str) -> bool:
    local, at, domain = text.rpartition("@")
    return bool(at and local and domain) and not any(c.isspace() for c in text)
