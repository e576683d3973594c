"""The merchant's policy file (`LOOPDESK_POLICY_FILE`, TOML), read once at start-up.

    [shop]
    name = "Company Store"            # signs the guide's emails

    [returns]
    window_days = 30                  # from delivery
    link_verification = "zip"         # what Loop's return link checks: zip, email or phone
    create_in_conversation = true     # false: return links only, no drafts (`loopdesk.drafts`)

    [exceptions]
    grace_days = 7                    # after the window closes
    vip_grace_multiplier = 2          # VIP customers get twice the grace
    once_per_days = 365               # one exception per customer per period (0: no limit)
    final_sale_skus = ["FS-"]         # SKU prefixes of final-sale items
    final_sale_titles = ["final sale"]  # words in a product or variant name

    [exceptions.words]                # the merchant's words for each refusal
    outside_grace = "..."

    [processing]                      # business days per stage
    in_transit_to_warehouse = 5

    [vip]                             # who counts as VIP (`routing.policy`)
    tags = ["VIP"]

Every key is optional (the defaults above); an unknown key, a wrong type, a negative
number of days or an unknown `{placeholder}` in the words fails with
`path:line: reason` naming the key. TOML syntax errors carry tomllib's line. For other
errors the line is found in the text: the `[table]` headers and `key = ...` lines are
read in order, and the error is put on the line of its key (or of the nearest enclosing
key or table written in the file, e.g. for a key inside an inline table).
"""

from __future__ import annotations

import difflib
import re
import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from loopdesk.domain.facts import FactsPolicy
from loopdesk.domain.timeline import ProcessingTimes
from loopdesk.errors import ConfigError
from loopdesk.routing.policy import VipSection, facts_policy

LinkVerification = Literal["zip", "email", "phone"]
MAX_DAYS = 3650  # ten years: no date arithmetic on a policy value can overflow
MAX_STAGE_DAYS = 365
MAX_WORDS = 1000

# What the refusal words may name, filled in when the decision is explained.
PLACEHOLDERS = (
    "shop",
    "order",
    "window_days",
    "grace_days",
    "once_per_days",
    "delivered_on",
    "window_closed_on",
    "grace_ends_on",
)

DEFAULT_WORDS = {
    "outside_grace": (
        "Order {order} was delivered on {delivered_on}: our {window_days}-day return window "
        "closed on {window_closed_on}, and we can only make an exception up to "
        "{grace_ends_on}."
    ),
    "already_used": (
        "We have already made a return-window exception for you in the last "
        "{once_per_days} days, and we can make one only once in that time."
    ),
    "final_sale": "The items in order {order} are final sale, so they cannot be returned.",
    "not_delivered": (
        "Order {order} has not been delivered yet: the {window_days}-day return window "
        "starts when it arrives."
    ),
    "unknown_delivery": (
        "We cannot see when order {order} was delivered, so a member of our team will "
        "look at your request."
    ),
}


@dataclass(frozen=True)
class ShopPolicy:
    name: str = ""  # none: the sandbox's shop in sandbox mode, else no name is said


@dataclass(frozen=True)
class ReturnsPolicy:
    window_days: int = 30
    link_verification: LinkVerification = "zip"
    # Whole returns made in the conversation through Loop's Draft Returns API; false
    # leaves the return link alone.
    create_in_conversation: bool = True


@dataclass(frozen=True)
class RefusalWords:
    outside_grace: str = DEFAULT_WORDS["outside_grace"]
    already_used: str = DEFAULT_WORDS["already_used"]
    final_sale: str = DEFAULT_WORDS["final_sale"]
    not_delivered: str = DEFAULT_WORDS["not_delivered"]
    unknown_delivery: str = DEFAULT_WORDS["unknown_delivery"]

    def say(self, rule: str, values: dict[str, str]) -> str:
        """The words for `rule` with their placeholders filled in (checked at load)."""
        text: str = getattr(self, rule)
        return text.format_map({name: values.get(name, "") for name in PLACEHOLDERS})


@dataclass(frozen=True)
class ExceptionsPolicy:
    grace_days: int = 7
    vip_grace_multiplier: float = 2
    once_per_days: int = 365
    final_sale_skus: tuple[str, ...] = ()
    final_sale_titles: tuple[str, ...] = ("final sale",)
    words: RefusalWords = field(default_factory=RefusalWords)

    def grace_for(self, vip: bool) -> int:
        """Whole days of grace (a VIP's multiplied grace rounds down)."""
        return int(self.grace_days * self.vip_grace_multiplier) if vip else self.grace_days


@dataclass(frozen=True)
class Policy:
    shop: ShopPolicy = field(default_factory=ShopPolicy)
    returns: ReturnsPolicy = field(default_factory=ReturnsPolicy)
    exceptions: ExceptionsPolicy = field(default_factory=ExceptionsPolicy)
    processing: ProcessingTimes = field(default_factory=ProcessingTimes)
    facts: FactsPolicy = field(default_factory=FactsPolicy)  # the `[vip]` table
    path: Path | None = None


# --- the file's schema -----------------------------------------------------------------


class _Section(BaseModel):
    # Strict: `"30"` where a number belongs is a mistake to name, not a value to guess.
    model_config = ConfigDict(extra="forbid", strict=True)


def _words(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as exc:
        raise ValueError(f"not usable words: {exc} (write {{{{ and }}}} for braces)") from None
    for name in sorted(names):
        if name not in PLACEHOLDERS:
            raise ValueError(
                f"unknown placeholder {{{name}}}; known: "
                + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
            )
    return value


class _Shop(_Section):
    name: str = Field(default=ShopPolicy.name, min_length=1, max_length=200)


class _Returns(_Section):
    window_days: int = Field(default=ReturnsPolicy.window_days, ge=0, le=MAX_DAYS)
    link_verification: LinkVerification = ReturnsPolicy.link_verification
    create_in_conversation: bool = ReturnsPolicy.create_in_conversation


class _Words(_Section):
    outside_grace: str = Field(default=DEFAULT_WORDS["outside_grace"], max_length=MAX_WORDS)
    already_used: str = Field(default=DEFAULT_WORDS["already_used"], max_length=MAX_WORDS)
    final_sale: str = Field(default=DEFAULT_WORDS["final_sale"], max_length=MAX_WORDS)
    not_delivered: str = Field(default=DEFAULT_WORDS["not_delivered"], max_length=MAX_WORDS)
    unknown_delivery: str = Field(default=DEFAULT_WORDS["unknown_delivery"], max_length=MAX_WORDS)

    @field_validator("*")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        return _words(value)


class _Exceptions(_Section):
    grace_days: int = Field(default=ExceptionsPolicy.grace_days, ge=0, le=MAX_DAYS)
    vip_grace_multiplier: float = Field(default=2, ge=1, le=10)
    once_per_days: int = Field(default=ExceptionsPolicy.once_per_days, ge=0, le=MAX_DAYS)
    final_sale_skus: list[str] = Field(default_factory=list, max_length=1000)
    final_sale_titles: list[str] = Field(default_factory=lambda: ["final sale"], max_length=1000)
    words: _Words = Field(default_factory=_Words)

    @field_validator("final_sale_skus", "final_sale_titles")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for item in value:
            if not item.strip():
                raise ValueError("an entry must not be blank (it would match every item)")
        return value


class _Processing(_Section):
    in_transit_to_warehouse: int = Field(default=5, ge=0, le=MAX_STAGE_DAYS)
    warehouse_to_processed: int = Field(default=3, ge=0, le=MAX_STAGE_DAYS)
    refund_to_account: int = Field(default=5, ge=0, le=MAX_STAGE_DAYS)
    credit_issued: int = Field(default=0, ge=0, le=MAX_STAGE_DAYS)
    exchange_ships: int = Field(default=2, ge=0, le=MAX_STAGE_DAYS)


class _File(_Section):
    shop: _Shop = Field(default_factory=_Shop)
    returns: _Returns = Field(default_factory=_Returns)
    exceptions: _Exceptions = Field(default_factory=_Exceptions)
    processing: _Processing = Field(default_factory=_Processing)
    vip: VipSection = Field(default_factory=VipSection)


# --- loading --------------------------------------------------------------------------


def load_policy(path: Path | None) -> Policy:
    """The policy in `path` (the defaults without one); `ConfigError` with
    `path:line: reason` for a file that cannot be used."""
    if path is None:
        return Policy()
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the policy file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the policy file is not UTF-8 text (byte {exc.start})") from None
    return parse_policy(text, path)


def parse_policy(text: str, path: Path) -> Policy:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_syntax_error(path, text, exc)) from None
    try:
        parsed = _File.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(_value_error(path, text, exc)) from None
    exceptions = parsed.exceptions
    return Policy(
        shop=ShopPolicy(name=parsed.shop.name.strip()),
        returns=ReturnsPolicy(
            window_days=parsed.returns.window_days,
            link_verification=parsed.returns.link_verification,
            create_in_conversation=parsed.returns.create_in_conversation,
        ),
        exceptions=ExceptionsPolicy(
            grace_days=exceptions.grace_days,
            vip_grace_multiplier=exceptions.vip_grace_multiplier,
            once_per_days=exceptions.once_per_days,
            final_sale_skus=tuple(s.strip() for s in exceptions.final_sale_skus),
            final_sale_titles=tuple(t.strip() for t in exceptions.final_sale_titles),
            words=RefusalWords(**exceptions.words.model_dump()),
        ),
        processing=ProcessingTimes(**parsed.processing.model_dump()),
        facts=facts_policy(parsed.vip),
        path=path,
    )


_AT_LINE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_AT_END = re.compile(r"\s*\(at end of document\)$")


def _syntax_error(path: Path, text: str, exc: tomllib.TOMLDecodeError) -> str:
    message = str(exc)
    found = _AT_LINE.search(message)
    if found:
        reason = message[: found.start()]
        return f"{path}:{found[1]}: not valid TOML: {reason} (column {found[2]})"
    last = max(len(text.splitlines()), 1)
    return f"{path}:{last}: not valid TOML: {_AT_END.sub('', message)} at the end of the file"


def _value_error(path: Path, text: str, exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    loc = tuple(str(part) for part in first["loc"])
    keys = tuple(part for part in loc if not part.isdigit())
    name = ".".join(keys)
    if first["type"] == "extra_forbidden":
        reason = f"unknown key `{name}`" + _did_you_mean(keys)
    else:
        ctx = first.get("ctx") or {}
        message = str(ctx["error"]) if first["type"] == "value_error" else str(first["msg"])
        message = message[:1].lower() + message[1:]
        item = f" (item {int(loc[-1]) + 1})" if loc and loc[-1].isdigit() else ""
        reason = f"`{name}`{item}: {message}"
    line = key_line(text, keys)
    where = f"{path}:{line}" if line else str(path)
    more = len(exc.errors()) - 1
    if more:
        reason += f" (and {more} more problem{'s' if more > 1 else ''})"
    return f"{where}: {reason}"


def _did_you_mean(keys: tuple[str, ...]) -> str:
    model: type[BaseModel] = _File
    for part in keys[:-1]:
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    close = difflib.get_close_matches(keys[-1], list(model.model_fields), n=1)
    return (
        f" (did you mean `{close[0]}`?)" if close else f"; known: {', '.join(model.model_fields)}"
    )


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'. ]+?)\s*=")


def _dotted(text: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in text.split("."))


def key_line(text: str, keys: tuple[str, ...]) -> int | None:
    """The line (from 1) where `keys` (a dotted path) is written: its `key =` line under
    its table, or its `[table]` header; failing that, the nearest enclosing one."""
    found: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    in_string = False
    for number, line in enumerate(text.splitlines(), start=1):
        # Lines inside a multi-line string are values, not keys.
        quotes = line.count('"""') + line.count("'''")
        if in_string:
            in_string = quotes % 2 == 0
            continue
        header = _HEADER.match(line)
        if header:
            table = _dotted(header[1])
            found.setdefault(table, number)
        else:
            key = _KEY.match(line)
            if key:
                found.setdefault((*table, *_dotted(key[1])), number)
        if quotes % 2 == 1:
            in_string = True
    for end in range(len(keys), 0, -1):
        if keys[:end] in found:
            return found[keys[:end]]
    return None
