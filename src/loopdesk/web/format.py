"""How the console writes money and times: Decimal amounts in the return's currency
(and integer minor units, as Loop's Draft Returns API sends them), moments as `<time>`
elements that `static/console.js` shows in the viewer's zone."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from markupsafe import Markup, escape

from loopdesk.domain.timestamps import parse_iso

# ISO 4217 minor units where they are not 2.
_ZERO_PLACES = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE_PLACES = "BHD IQD JOD KWD LYD OMR TND"
_EXPONENT = {**dict.fromkeys(_ZERO_PLACES.split(), 0), **dict.fromkeys(_THREE_PLACES.split(), 3)}
# Symbols that are unambiguous to an English-reading agent; other currencies show
# their code after the amount ("1,250.00 SEK").
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


def money(amount: str | Decimal | None, currency: str | None) -> str:
    """`"-29.99", "USD"` -> `-$29.99`; `"3000.00", "JPY"` -> `¥3,000`; an amount that is
    not a decimal is shown as Loop sent it."""
    if amount is None or amount == "":
        return "—"
    code = (currency or "").strip().upper()
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    if not value.is_finite():
        return str(amount)
    places = _EXPONENT.get(code, 2)
    value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 else ""
    digits = f"{abs(value):,.{places}f}"
    if code in _SYMBOL:
        return f"{sign}{_SYMBOL[code]}{digits}"
    return f"{sign}{digits} {code}".rstrip()


def minor_money(amount: object, currency: str | None) -> str:
    """`1500, "USD"` -> `$15.00`; `1500, "JPY"` -> `¥1,500`: an integer of minor units,
    shifted by the currency's exponent as a Decimal (never a float). Anything but an
    integer is shown as it came."""
    if amount is None:
        return "—"
    if isinstance(amount, bool) or not isinstance(amount, int):
        return str(amount)
    places = _EXPONENT.get((currency or "").strip().upper(), 2)
    return money(Decimal(amount).scaleb(-places), currency)


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_iso(value).astimezone(UTC)
    except (ValueError, TypeError, OverflowError):
        return None


def when(value: str | None, style: str = "datetime") -> Markup:
    """A `<time>` element: the exact moment in `datetime`, UTC text until the script
    writes it in the viewer's time zone (`style`: `date` or `datetime`)."""
    moment = _moment(value)
    if moment is None:
        return Markup("—") if not value else escape(value)
    text = moment.strftime("%Y-%m-%d" if style == "date" else "%Y-%m-%d %H:%M UTC")
    return Markup('<time datetime="{iso}" data-local="{style}">{text}</time>').format(
        iso=moment.isoformat(), style=style, text=text
    )


def ago(value: str | None, now: datetime | None = None) -> Markup:
    """`3 minutes ago` as a `<time>` the script keeps current."""
    moment = _moment(value)
    if moment is None:
        return Markup("never")
    now = now or datetime.now(UTC)
    return Markup('<time datetime="{iso}" data-ago>{text}</time>').format(
        iso=moment.isoformat(), text=ago_text((now - moment).total_seconds())
    )


def ago_text(seconds: float) -> str:
    minutes = int(max(seconds, 0) // 60)
    if minutes < 1:
        return "less than a minute ago"
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''} ago"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} hour{'s' if hours != 1 else ''} ago"
    return f"{hours // 24} days ago"
