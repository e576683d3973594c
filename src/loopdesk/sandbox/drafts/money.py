"""Money for Loop's Draft Returns: integers in minor units, from the data's "12.00" strings.

Decimal all the way (never float). Most currencies have cents; the few without minor
units (JPY, KRW ...) count whole units, so "1200.00" yen is 1200.
"""

from __future__ import annotations

import re
from decimal import Decimal

from loopdesk.domain.money import exponent

_AMOUNT = re.compile(r"^\d{1,12}(\.\d{1,2})?$")


def is_amount(text: str) -> bool:
    """A non-negative decimal amount as the data file writes prices: "12", "12.5", "12.00"."""
    return bool(_AMOUNT.match(text))


def minor_units(amount: str, currency: str = "USD") -> int:
    """ "12.00" -> 1200 (USD), "1200" -> 1200 (JPY); ValueError when not exact."""
    if not is_amount(amount):
        raise ValueError(f"not an amount: {amount!r}")
    scaled = Decimal(amount).scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount!r} has more decimals than {currency} has")
    return int(scaled)


def decimal_string(minor: int, currency: str = "USD") -> str:
    """1200 -> "12.00": the returns list's money strings (2 decimals, as Loop writes them)."""
    value = Decimal(minor).scaleb(-exponent(currency))
    return str(value.quantize(Decimal("0.01")))
