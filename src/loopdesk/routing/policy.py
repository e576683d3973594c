"""The part of the merchant's policy file that facts read: the `[vip]` table.

    [vip]
    tags = ["VIP", "Gold"]        # a customer tag that makes a VIP (default ["VIP"])
    attributes = ["vip"]          # a customer attribute that, when true, makes a VIP
    emails = ["ceo@example.com"]  # addresses that are always VIP

The contract's criteria (`attributes.vip` true, `attributes.tags` holding "VIP") always
hold; the file adds to them. The whole file is read and checked by `policy.file.load_policy`
(the other tables belong to the exceptions, the timeline and the guide); a bad file
fails at start-up with its path, line and reason.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from loopdesk.domain.facts import DEFAULT_VIP_TAGS, FactsPolicy


class VipSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tags: list[str] = Field(default_factory=list, max_length=100)
    attributes: list[str] = Field(default_factory=list, max_length=100)
    emails: list[str] = Field(default_factory=list, max_length=10_000)


def facts_policy(vip: VipSection) -> FactsPolicy:
    """The facts' policy from a checked `[vip]` table."""
    return FactsPolicy(
        vip_tags=tuple(dict.fromkeys([*DEFAULT_VIP_TAGS, *vip.tags])),
        vip_attributes=tuple(dict.fromkeys(["vip", *vip.attributes])),
        vip_emails=frozenset(e.strip().lower() for e in vip.emails if e.strip()),
    )


def load_facts_policy(path: Path | None) -> FactsPolicy:
    """The `[vip]` part of the policy file, read with the rest of it
    (`policy.file.load_policy`: one read, one check, errors with their line)."""
    from loopdesk.policy.file import load_policy

    return load_policy(path).facts
