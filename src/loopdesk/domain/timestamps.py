"""Timestamps as Loop writes them, read the way Gladly's Loop app reads them.

Loop mixes `2022-11-02T00:13:08+00:00`, `2023-01-01T22:27:16.000Z`, `+0000` offsets,
the zone-less `2022-11-02 00:13:08` (UTC) and the placeholder `"N/A"`. The peer keeps
ISO 8601 values as written, turns `YYYY-MM-DD HH:MM:SS` into `YYYY-MM-DDTHH:MM:SSZ`, and
anything else into null. We do the same, and also move a non-UTC offset to UTC (and
write `+0000` as `+00:00`) so every timestamp we emit is UTC ISO 8601.

A moment outside 1970-9998 (after moving to UTC) is no date Loop keeps: it reads as
unusable, so that no later arithmetic on it (a window, an offset) can overflow. At the
edges (query parameters, webhook fields) such a value is the caller's `InvalidInput`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from loopdesk.errors import InvalidInput, InvalidUpstreamData

_LOOP_NAIVE = re.compile(r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)", re.ASCII)
_ISO = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(Z|[+-]\d{2}:?\d{2})?",
    re.ASCII | re.IGNORECASE,
)
PLACEHOLDERS = frozenset({"N/A"})
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)  # exclusive


def normalize_timestamp(value: Any) -> str | None:
    """An ISO 8601 UTC string, or None when the value is absent or not a usable timestamp."""
    try:
        return checked_timestamp(value)
    except InvalidUpstreamData:
        return None


def checked_timestamp(value: Any) -> str | None:
    """An ISO 8601 UTC string; None when absent (null, empty, `"N/A"`).

    Raises `InvalidUpstreamData` for a value that is present but unusable (not a
    timestamp, an impossible date, out of range), so callers can report it.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidUpstreamData(f"expected a timestamp, got {type(value).__name__}")
    text = value.strip()
    if not text or text in PLACEHOLDERS:
        return None
    return _read(text)[1]


def parse_iso(value: str) -> datetime:
    """An aware datetime from a normalized timestamp (zone-less reads as UTC)."""
    parsed = datetime.fromisoformat(value.replace("z", "Z"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_timestamp(value: str, *, field: str) -> datetime:
    """A timestamp given at an edge (query parameter, webhook field) as an aware UTC
    datetime; anything unusable is the caller's `InvalidInput` naming `field`."""
    try:
        return _read(value.strip())[0]
    except InvalidUpstreamData as exc:
        raise InvalidInput(f"`{field}`: {exc.message}", details={"field": field}) from None


def checked_moment(moment: datetime, *, field: str) -> datetime:
    """An already parsed datetime (zone-less reads as UTC) in UTC and in range, or
    `InvalidInput`: `9999-12-31T23:59:59-23:59` has no UTC datetime at all."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        utc = aware.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise InvalidInput(f"`{field}`: {_RANGE}", details={"field": field})
    return utc


_RANGE = "timestamp out of range (1970 to 9998, UTC)"


def _read(text: str) -> tuple[datetime, str]:
    """The UTC moment of `text` and how we write it; `InvalidUpstreamData` otherwise."""
    naive = _LOOP_NAIVE.fullmatch(text)
    if naive:
        written = f"{naive[1]}T{naive[2]}"
        return _in_range(_parse(written).replace(tzinfo=UTC)), f"{written}Z"
    match = _ISO.fullmatch(text)
    if not match:
        raise InvalidUpstreamData(f"not a timestamp: {text[:40]!r}")
    zone = match[1]
    if zone is None:  # zone-less ISO: Loop's zone-less values are UTC
        return _in_range(_parse(text).replace(tzinfo=UTC)), f"{text}Z"
    if zone.upper() == "Z":
        written = text[:-1] + "Z"
        return _in_range(_parse(written)), written
    offset = zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
    written = text[: -len(zone)] + offset
    moment = _parse(written)
    if moment.utcoffset() == UTC.utcoffset(None):
        return _in_range(moment), written[: -len(offset)] + "+00:00"
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        raise InvalidUpstreamData(_RANGE) from None
    return _in_range(utc), utc.isoformat()


def _parse(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidUpstreamData(f"not a valid timestamp: {text[:40]!r}") from None


def _in_range(moment: datetime) -> datetime:
    if not EARLIEST <= moment < LATEST:
        raise InvalidUpstreamData(_RANGE)
    return moment
