"""Timestamps as Loop writes them, read the way Gladly's Loop app reads them.

Loop mixes `2022-11-02T00:13:08+00:00`, `2023-01-01T22:27:16.000Z`, the zone-less
`2022-11-02 00:13:08` (UTC) and the placeholder `"N/A"`. The peer keeps ISO 8601
values as written, turns `YYYY-MM-DD HH:MM:SS` into `YYYY-MM-DDTHH:MM:SSZ`, and
anything else into null. We do the same, and also move a non-UTC offset to UTC so
every timestamp we emit is UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

_LOOP_NAIVE = re.compile(r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)$")
_ISO = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$", re.IGNORECASE
)
_UTC_SUFFIXES = ("Z", "z", "+00:00", "-00:00")


def normalize_timestamp(value: Any) -> str | None:
    """An ISO 8601 UTC string, or None when the value is absent or not a timestamp."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    naive = _LOOP_NAIVE.match(text)
    if naive:
        if _valid(f"{naive[1]}T{naive[2]}+00:00"):
            return f"{naive[1]}T{naive[2]}Z"
        return None
    match = _ISO.match(text)
    if not match or not _valid(text):
        return None
    if match[2] is None:  # zone-less ISO: Loop's zone-less values are UTC
        return f"{text}Z"
    if text.endswith(_UTC_SUFFIXES):
        return text
    return parse_iso(text).astimezone(UTC).isoformat()


def parse_iso(value: str) -> datetime:
    """An aware datetime from a normalized timestamp (zone-less reads as UTC)."""
    parsed = datetime.fromisoformat(value.replace("z", "Z"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _valid(text: str) -> bool:
    try:
        parse_iso(text)
    except ValueError:
        return False
    return True
