"""Money in a currency: ISO 4217 minor units, and amounts as people read them.

Loop's Draft Returns API counts integer minor units; its returns lists write decimal
strings. Both become `Decimal` here, never a float.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 minor-unit digits where they are not 2.
_ZERO_PLACES = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE_PLACES = "BHD IQD JOD KWD LYD OMR TND"
_EXPONENT = {**dict.fromkeys(_ZERO_PLACES.split(), 0), **dict.fromkeys(_THREE_PLACES.split(), 3)}
# Symbols that are unambiguous to an English reader; other currencies show their code
# after the amount ("1,250.00 SEK").
_SYMBOL = {
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "JPY": "¥",
    "CAD": "CA$",
    "AUD": "A$",
    "NZD": "NZ$",
    "HKD": "HK$",
    "MXN": "MX$",
    "BRL": "R$",
    "INR": "₹",
    "KRW": "₩",
    "CNY": "CN¥",
    "ILS": "₪",
}


def exponent(currency: str | None) -> int:
    """The currency's minor-unit digits: 2 for USD, 0 for JPY, 3 for KWD (2 if unknown)."""
    return _EXPONENT.get((currency or "").strip().upper(), 2)


def from_minor(amount: int, currency: str | None) -> Decimal:
    """`1500, "USD"` -> `Decimal("15.00")`: shifted by the exponent, exactly."""
    return Decimal(amount).scaleb(-exponent(currency))


def money(amount: str | Decimal | None, currency: str | None) -> str:
    """`"-29.99", "USD"` -> `-$29.99`; `"3000.00", "JPY"` -> `¥3,000`; an amount that is
    not a decimal is shown as it came."""
    if amount is None or amount == "":
        return "—"
    code = (currency or "").strip().upper()
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    if not value.is_finite():
        return str(amount)
    places = exponent(code)
    value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 else ""
    digits = f"{abs(value):,.{places}f}"
    if code in _SYMBOL:
        return f"{sign}{_SYMBOL[code]}{digits}"
    return f"{sign}{digits} {code}".rstrip()


def minor_money(amount: object, currency: str | None) -> str:
    """`1500, "USD"` -> `$15.00`; `1500, "JPY"` -> `¥1,500`. Anything but an integer of
    minor units is shown as it came."""
    if amount is None:
        return "—"
    if isinstance(amount, bool) or not isinstance(amount, int):
        return str(amount)
    return money(from_minor(amount, currency), currency)
