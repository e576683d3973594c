"""The part of the merchant's policy file that facts read: the `[vip]` table.

    [vip]
    tags = ["VIP", "Gold"]        # a customer tag that makes a VIP (default ["VIP"])
    attributes = ["vip"]          # a customer attribute that, when true, makes a VIP
    emails = ["ceo@example.com"]  # addresses that are always VIP

The contract's criteria (`attributes.vip` true, `attributes.tags` holding "VIP") always
hold; the file adds to them. Other tables belong to other parts of the policy and are
not read here. A bad file fails at start-up with its path and the reason.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loopdesk.domain.facts import DEFAULT_VIP_TAGS, FactsPolicy
from loopdesk.errors import ConfigError


class _VipSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tags: list[str] = Field(default_factory=list, max_length=100)
    attributes: list[str] = Field(default_factory=list, max_length=100)
    emails: list[str] = Field(default_factory=list, max_length=10_000)


def load_facts_policy(path: Path | None) -> FactsPolicy:
    if path is None:
        return FactsPolicy()
    try:
        document = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the policy file: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        vip = _VipSection.model_validate(document.get("vip", {}))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in ("vip", *first["loc"]))
        raise ConfigError(f"{path}: `{where}`: {first['msg']}") from None
    return FactsPolicy(
        vip_tags=tuple(dict.fromkeys([*DEFAULT_VIP_TAGS, *vip.tags])),
        vip_attributes=tuple(dict.fromkeys(["vip", *vip.attributes])),
        vip_emails=frozenset(e.strip().lower() for e in vip.emails if e.strip()),
    )
