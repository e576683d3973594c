"""The shapes a caller's input must have, checked at the edge before any work.

Annotated types shared by every route (and the CLI): a value that breaks them is a 422
in the project's error shape, so it never reaches the store (PostgreSQL refuses NUL
bytes and over-long values with an error of its own) nor Loop (a path id of `..` would
otherwise be resolved into another endpoint's URL).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator, Field, TypeAdapter, ValidationError

from loopdesk.actions.run import MAX_NOTE_LENGTH
from loopdesk.customers.profile import EMAIL_MAX_LENGTH, email_problem
from loopdesk.errors import InvalidInput
from loopdesk.store.types import MAX_ROW_ID

# Loop's return ids and allowlist ids are integers (ids of its database rows); the
# 64-bit range bounds them at 19 digits.
_LOOP_ID = re.compile(r"[0-9]{1,19}")
LOOP_ID_PATTERN = f"^{_LOOP_ID.pattern}$"
TEXT_MAX_LENGTH = 500
MAX_EMAILS_PER_REQUEST = 100  # far above any profile; past `lookup_max_emails` they are dropped

_LINE_BREAKS = frozenset("\t\n\r")


def _email(value: str) -> str:
    problem = email_problem(value.strip())
    if problem is not None:
        raise ValueError(problem)
    return value.strip()


def _printable(multiline: bool) -> AfterValidator:
    """No control characters (NUL above all) and no lone surrogates, which no
    database column nor UTF-8 encoder accepts; tabs and line breaks where allowed."""

    def check(value: str) -> str:
        for char in value:
            if multiline and char in _LINE_BREAKS:
                continue
            if unicodedata.category(char) in ("Cc", "Cs"):
                raise ValueError(
                    f"character U+{ord(char):04X} (control or lone surrogate) is not allowed"
                )
        return value

    return AfterValidator(check)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


# `email_problem` is the rule; this pattern only tells the schema's readers (and the
# fuzzer) the same thing: something, "@", a domain, no spaces or control characters.
_EMAIL_SHAPE = r"^[^\s\x00-\x1f\x7f-\x9f]+@[^\s@\x00-\x1f\x7f-\x9f]+$"

Email = Annotated[
    str,
    Field(
        min_length=3,
        max_length=EMAIL_MAX_LENGTH,
        examples=["primary@email.com"],
        json_schema_extra={"pattern": _EMAIL_SHAPE},
    ),
    AfterValidator(_email),
]
"""One email address: at most 320 characters, no spaces or control characters."""


def _loop_id(value: str) -> str:
    if not _LOOP_ID.fullmatch(value):
        raise ValueError("not a Loop id: Loop's return and allowlist ids are digits only")
    return value


LoopId = Annotated[
    str,
    Field(
        description="A Loop id (digits)",
        examples=["25044777"],
        json_schema_extra={"pattern": LOOP_ID_PATTERN},
    ),
    AfterValidator(_loop_id),
]
"""A Loop return or allowlist id: digits only, so a path can never become another URL."""

NoteText = Annotated[
    str,
    Field(min_length=1, max_length=MAX_NOTE_LENGTH),
    _printable(multiline=True),
    AfterValidator(_not_blank),
]
"""A note's content: 1 to 255 characters, line breaks allowed."""


OrderName = Annotated[
    str, Field(min_length=1, max_length=200), _printable(False), AfterValidator(_not_blank)
]
ZipOrContact = Annotated[
    str,
    Field(min_length=1, max_length=EMAIL_MAX_LENGTH, description="ZIP, email or phone"),
    _printable(False),
    AfterValidator(_not_blank),
]
AllowlistValue = Annotated[
    str,
    Field(min_length=1, max_length=TEXT_MAX_LENGTH),
    _printable(False),
    AfterValidator(_not_blank),
]

FilterText = Annotated[str, Field(min_length=1, max_length=64), _printable(False)]
"""A query filter matched against a stored name (audit action, queue, rule: 64 wide)."""
LongFilterText = Annotated[str, Field(min_length=1, max_length=128), _printable(False)]
"""A filter on a 128-wide name (an API key's, a rule's)."""

_LOOP_ID_ADAPTER: TypeAdapter[str] = TypeAdapter(LoopId)


def loop_id(value: str, *, field: str = "id") -> str:
    """`value` checked as a `LoopId` outside a request (the CLI); InvalidInput otherwise."""
    try:
        return _LOOP_ID_ADAPTER.validate_python(value)
    except ValidationError:
        raise InvalidInput(
            f"{field} must be a Loop id (digits only), got {value[:40]!r}", details={"field": field}
        ) from None


# Paging of the newest-first lists (`/v1/audit`, `/v1/exceptions`): a page size and the
# id the next page starts below.
PageLimit = Annotated[int, Query(ge=1, le=500)]
PageBefore = Annotated[
    int | None, Query(ge=1, le=MAX_ROW_ID, description="Page: items older than this id")
]
