"""The next legal steps of a draft: `links` (`/api/v1`) or HAL-Forms, and what they allow.

Nothing here assumes an order of steps: Loop's answer lists what may follow.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from loopdesk.domain.drafts.models import Draft, Link
from loopdesk.domain.drafts.values import (
    as_mapping,
    as_object,
    as_objects,
    input_id,
    read_flag,
    read_text,
)
from loopdesk.errors import DraftStepNotAllowed, InvalidUpstreamData

# The link rel that makes each `LoopDraftsClient` call legal. Seen in the peer's fixtures:
# set-return-reason, add-exchange-item, totals. In Loop's docs: add-returning-item,
# finalize-items, submit-draft-return. The rest are inferred from Loop's endpoint names
# (no fixture or page pins them). `create` starts a draft and `get` is always allowed,
# so neither has a rel.
CALL_RELS: Mapping[str, str] = MappingProxyType(
    {
        "add_returning_item": "add-returning-item",
        "remove_returning_item": "remove-returning-item",  # inferred
        "set_return_reason": "set-return-reason",
        "set_return_type": "set-return-type",  # inferred
        "add_exchange_item": "add-exchange-item",
        "finalize_items": "finalize-items",
        "set_credit_type": "set-credit-type",  # inferred
        "select_return_method": "select-return-method",  # inferred
        "totals": "totals",
        "submit": "submit-draft-return",
        "cancel": "cancel-draft-return",  # inferred
    }
)
# HAL's `self` names the draft itself, not a step.
_HAL_SELF = "self"


def parse_links(body: Any) -> tuple[Link, ...]:
    """The `links` array of `/api/v1`, or HAL-Forms `_links` + `_templates` (newer versions).

    HAL-Forms names each template after the rel it acts on; a template without a link
    (Loop signals readiness with the `submit-draft-return` template) targets its own
    `target`, else the draft's `self` link.
    """
    root = as_object(body, "draft body")
    if "links" in root and root["links"] is not None:
        return tuple(_link(raw, at) for at, raw in as_objects(root["links"], "links"))
    hal_links = as_mapping(root.get("_links"), "_links")
    templates = as_mapping(root.get("_templates"), "_templates")
    self_href = ""
    found: list[Link] = []
    for rel, value in hal_links.items():
        entries = value if isinstance(value, list) else [value]  # HAL allows a list per rel
        for index, entry in enumerate(entries):
            at = f"_links.{rel}" + (f"[{index}]" if isinstance(value, list) else "")
            link = as_mapping(entry, at)
            href = read_text(link.get("href"), f"{at}.href") or ""
            if rel == _HAL_SELF:
                self_href = self_href or href
                continue
            template = as_mapping(templates.get(rel), f"_templates.{rel}")
            found.append(_hal_link(rel, href, link, template))
    for name, value in templates.items():
        if name in hal_links:
            continue
        template = as_mapping(value, f"_templates.{name}")
        href = read_text(template.get("target"), f"_templates.{name}.target") or self_href
        found.append(_hal_link(name, href, {}, template))
    return tuple(found)


def _link(raw: dict[str, Any], at: str) -> Link:
    rel = read_text(raw.get("rel"), f"{at}.rel")
    if not rel:
        raise InvalidUpstreamData(f"{at}: `rel` is missing")
    return Link(
        rel=rel,
        href=read_text(raw.get("href"), f"{at}.href") or "",
        # An untyped link is followed with GET, as any hyperlink is.
        method=(read_text(raw.get("method"), f"{at}.method") or "GET").upper(),
        is_required=read_flag(raw.get("is_required"), f"{at}.is_required"),
        description=read_text(raw.get("description"), f"{at}.description"),
        fields=raw.get("fields"),
    )


def _hal_link(rel: str, href: str, link: dict[str, Any], template: dict[str, Any]) -> Link:
    at = f"_templates.{rel}"
    required = link.get("is_required", template.get("is_required"))
    return Link(
        rel=rel,
        href=href,
        method=(read_text(template.get("method"), f"{at}.method") or "GET").upper(),
        is_required=read_flag(required, f"{at}.is_required"),
        description=read_text(template.get("title", link.get("title")), f"{at}.title"),
        fields=template.get("properties"),
    )


def next_steps(draft: Draft) -> tuple[str, ...]:
    """The rels Loop offers now, in Loop's order, each once."""
    return tuple(dict.fromkeys(link.rel for link in draft.links))


def allows(draft: Draft, rel: str) -> bool:
    return any(link.rel == rel for link in draft.links)


def link_for(draft: Draft, rel: str, *, returning_item_id: str | int | None = None) -> Link | None:
    """The link for `rel`, for one returning item when given (its id in the link's path)."""
    segment = None
    if returning_item_id is not None:
        segment = f"/returning-items/{input_id(returning_item_id, 'returning_item_id')}/"
    for link in draft.links:
        if link.rel == rel and (segment is None or segment in link.href.split("?")[0] + "/"):
            return link
    return None


def require_step(
    draft: Draft, call: str, *, returning_item_id: str | int | None = None
) -> Link | None:
    """The link that makes the client call `call` legal now, or `DraftStepNotAllowed`.

    `create` and `get` need no link (None). The error's details list what is allowed.
    """
    if call not in CALL_RELS:
        if call in ("create", "get"):
            return None
        raise ValueError(f"unknown draft call {call!r}")
    rel = CALL_RELS[call]
    link = link_for(draft, rel, returning_item_id=returning_item_id)
    if link is None:
        target = "" if returning_item_id is None else f" for returning item {returning_item_id}"
        raise DraftStepNotAllowed(
            f"Loop does not offer `{rel}`{target} on draft return {draft.id or '?'} now",
            details={"rel": rel, "state": draft.state, "nextSteps": list(next_steps(draft))},
        )
    return link
