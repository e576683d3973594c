"""What a customer's message says besides its intent: an order name, a postal code, an
email address, a phone number, and whether they say a delivered parcel never came.

Order names: `#1234`, `order 1234`, `pedido 1234`, `no. 1234`, or a lone number of 3 to
10 digits. Shops name orders `#1001` by default
(Shopify); a name written without `#` is looked for with it. Postal codes: US ZIP (5 or
9 digits), Canadian (`K1A 0B1`), UK (`SW1A 1AA`), or any 3-10 letters and digits when the
guide just asked for one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_ORDER_WORDS = r"(?:order|ord|orden|pedido|purchase|compra|no\.?|number|num|nº|n°)"
_ORDER_AFTER_WORD = re.compile(
    rf"\b{_ORDER_WORDS}\s*(?:number|num|no\.?|nº|#)?\s*[:#-]?\s*#?\s*([A-Za-z]{{0,4}}-?\d{{3,10}})\b",
    re.IGNORECASE,
)
_ORDER_HASH = re.compile(r"(?<![\w#])#\s?([A-Za-z]{0,4}-?\d{3,10})\b")
_BARE_NUMBER = re.compile(r"(?<![\w#.,/-])(\d{3,10})(?![\w.,/-]{0,20}\d)")
_US_ZIP = re.compile(r"(?<!\d)(\d{5})(?:-(\d{4}))?(?!\d)")
_CA_POSTAL = re.compile(r"\b([A-Za-z]\d[A-Za-z])\s?(\d[A-Za-z]\d)\b")
_UK_POSTAL = re.compile(r"\b([A-Za-z]{1,2}\d[A-Za-z\d]?)\s?(\d[A-Za-z]{2})\b")
_ANY_CODE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9 -]{1,10}[A-Za-z0-9])\s*[.!]?\s*$")
_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<!\w)(\+?\d[\d\s().-]{6,18}\d)(?!\w)")

# "It says delivered but I never got it", in the ways customers put it.
_NOT_RECEIVED = re.compile(
    r"never (?:got|received|arrived|came|showed)|(?:did ?n[o']?t|didnt|have ?n[o']?t|havent|not)"
    r" (?:get|got|receive|received|arrive|arrived|come|show(?:n|ed)? up)|not here"
    r"|no (?:package|parcel|box)|nothing (?:arrived|came|here|there)|(?:was|is)n'?t there"
    r"|not there|stolen|missing|porch pirate"
    r"|no (?:lo|la|me) (?:he |ha )?(?:recibido|recib[ií]|lleg[oó]|llegado)|nunca lleg",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Entities:
    order_name: str | None = None
    postal_code: str | None = None
    email: str | None = None
    phone: str | None = None
    not_received: bool = False


MAX_READ = 4000  # characters read: what a customer gives comes first (quotes follow)
LOOK_BEHIND = 40


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text[:MAX_READ])


_ZIP_WORDS = re.compile(
    r"\b(?:zip|zipcode|postal|postcode|post code|c[oó]digo postal|cp)\b"
    r"\W{0,3}(?:code\W{0,3})?(?:is\W+|es\W+)?$",
    re.IGNORECASE,
)
_MONEY_BEFORE = re.compile(r"[$€£]\s*$")


def _before(text: str, at: int) -> str:
    """The few characters before `at`: what introduces a value is right before it."""
    return text[max(0, at - LOOK_BEHIND) : at]


def _bare_numbers(text: str) -> list[re.Match[str]]:
    """Numbers standing alone that are neither money nor introduced as a postal code."""
    return [
        m
        for m in _BARE_NUMBER.finditer(text)
        if not _MONEY_BEFORE.search(_before(text, m.start()))
        and not _ZIP_WORDS.search(_before(text, m.start()))
        and text[m.end() : m.end() + 1] != "%"
    ]


def order_name(text: str) -> str | None:
    """The order name the text mentions, as the shop writes it (`#1234`), or None.

    `#1234` and `order 1234` always count; a bare number of 3 to 10 digits counts when
    it is the only one in the message and is neither money nor introduced as a postal
    code."""
    text = _fold(text)
    for pattern in (_ORDER_HASH, _ORDER_AFTER_WORD):
        found = pattern.search(text)
        if found:
            return "#" + found.group(1).upper()
    numbers = _bare_numbers(text)
    if len(numbers) == 1:
        return "#" + numbers[0].group(1)
    return None


def postal_code(text: str, *, expecting: bool = False) -> str | None:
    """A postal code in the text, normalised (upper case, one space where the format has
    one), or None. Without `expecting`, a code counts only when introduced as one
    ("zip 43215") or in the Canadian format; when the guide asked for it, US, Canadian
    and UK formats and any short code with a digit count."""
    text = _fold(text)
    for found in _US_ZIP.finditer(text):
        if expecting or _ZIP_WORDS.search(_before(text, found.start())):
            return found.group(1) + (f"-{found.group(2)}" if found.group(2) else "")
    if (canadian := _CA_POSTAL.search(text)) is not None:
        return f"{canadian.group(1)} {canadian.group(2)}".upper()
    if expecting:
        if (british := _UK_POSTAL.search(text)) is not None:
            return f"{british.group(1)} {british.group(2)}".upper()
        if (code := _ANY_CODE.match(text)) is not None and any(c.isdigit() for c in text):
            return code.group(1).upper()
    return None


def email(text: str) -> str | None:
    found = _EMAIL.search(_fold(text))
    return found.group(0) if found else None


def phone(text: str) -> str | None:
    found = _PHONE.search(_fold(text))
    if found is None:
        return None
    digits = re.sub(r"[^\d+]", "", found.group(1))
    return digits if 7 <= len(digits.lstrip("+")) <= 15 else None


def says_not_received(text: str) -> bool:
    return bool(_NOT_RECEIVED.search(_fold(text)))


def extract(text: str, *, expecting: str = "") -> Entities:
    """Everything the text gives; `expecting` is what the guide asked for last
    (`order`, `verification`), which lets bare values count."""
    order = order_name(text)
    code = postal_code(text, expecting=expecting == "verification")
    if order is not None and code is not None and order.lstrip("#") == code:
        # One number, read both ways: it is what the guide asked for.
        if expecting == "verification":
            order = None
        else:
            code = None
    return Entities(
        order_name=order,
        postal_code=code,
        email=email(text),
        phone=phone(text) if expecting == "verification" else None,
        not_received=says_not_received(text),
    )
