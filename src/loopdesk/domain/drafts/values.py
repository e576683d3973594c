"""Scalars of Loop's draft bodies and of callers' inputs: ids, amounts, text, flags.

Ids are decimal strings read through a 64-bit integer, never through a float: a JSON
number above 2**53 keeps every digit. Amounts are integers in minor units.
"""

from __future__ import annotations

import re
from typing import Any

from loopdesk.errors import InvalidInput, InvalidUpstreamData

# The peer converts ids through a 64-bit integer; anything larger is not Loop's.
INT64_MAX = 2**63 - 1
# A JSON float holds every integer up to 2**53 exactly; beyond, digits were already lost.
_FLOAT_EXACT = 2**53
_DIGITS = re.compile(r"[0-9]{1,19}", re.ASCII)
_SIGNED_DIGITS = re.compile(r"-?[0-9]{1,19}", re.ASCII)

RETURN_TYPES = ("credit", "exchange")
CREDIT_TYPES = ("refund", "gift")  # refund to the original payment, or store credit
CURRENCY_TYPES = ("shop", "presentment")


def input_id(value: Any, name: str) -> int:
    """A caller's id (a GraphQL `ID`: text or a number) as the integer Loop takes.

    Refused with `InvalidInput`: booleans, fractions, signs, anything but decimal digits,
    zero, and values beyond 64 bits.
    """
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    if number is None or not 0 < number <= INT64_MAX:
        shown = value[:40] if isinstance(value, str) else value
        raise InvalidInput(
            f"{name} must be a positive integer id, got {shown!r}", details={"field": name}
        )
    return number


def read_id(value: Any, at: str) -> str | None:
    """An id as a decimal string through an integer; None when absent."""
    if value is None or value == "":
        return None
    number = _integer(value, at, "an id", signed=False)
    return str(number)


def read_amount(value: Any, at: str) -> int | None:
    """An integer amount in minor units; None when absent.

    A JSON number that is a whole number (`800`, `800.0`) is taken as is. Text and
    fractional numbers are refused: Loop documents these amounts as integers, and
    whether `"8.00"` means 8 or 800 minor units cannot be known.
    """
    if value is None:
        return None
    if isinstance(value, str):
        raise InvalidUpstreamData(
            f"{at}: expected an integer amount in minor units, got the text {value[:40]!r}"
        )
    return _integer(value, at, "an integer amount in minor units", signed=True)


def _integer(value: Any, at: str, what: str, *, signed: bool) -> int:
    number: int
    if isinstance(value, bool):
        raise InvalidUpstreamData(f"{at}: expected {what}, got a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        # Only a whole float small enough to be exact is the integer it shows.
        if not value.is_integer() or abs(value) > _FLOAT_EXACT:
            raise InvalidUpstreamData(f"{at}: expected {what}, got {value!r}")
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not (_SIGNED_DIGITS if signed else _DIGITS).fullmatch(text):
            raise InvalidUpstreamData(f"{at}: expected {what}, got {text[:40]!r}")
        number = int(text)
    else:
        raise InvalidUpstreamData(f"{at}: expected {what}, got {type(value).__name__}")
    if abs(number) > INT64_MAX or (number < 0 and not signed):
        raise InvalidUpstreamData(f"{at}: {number} is not a 64-bit {what.removeprefix('an ')}")
    return number


def read_text(value: Any, at: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise InvalidUpstreamData(f"{at}: expected text, got {type(value).__name__}")


def read_flag(value: Any, at: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise InvalidUpstreamData(f"{at}: expected true or false, got {value!r}")


def as_object(value: Any, at: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidUpstreamData(f"{at}: expected an object, got {type(value).__name__}")
    return value


def as_mapping(value: Any, at: str) -> dict[str, Any]:
    """An object that may be absent; `[]` is an empty one (PHP encodes `{}` so)."""
    if value is None or value == []:
        return {}
    return as_object(value, at)


def as_list(value: Any, at: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidUpstreamData(f"{at}: expected a list, got {type(value).__name__}")
    return value


def as_objects(value: Any, at: str) -> list[tuple[str, dict[str, Any]]]:
    items = enumerate(as_list(value, at))
    return [(f"{at}[{i}]", as_object(raw, f"{at}[{i}]")) for i, raw in items]
