"""What the guide says, as data: rendered per channel by `guides.render`.

A flow never writes customer-facing text itself. It answers with a `Reply`: the
message's name (a template, e.g. `return_status.one`), the variables that template reads,
the links the answer carries (their URLs are only ever ones Loop or Order Tracking
gave) and the quick replies offered. One reply, three renderings (chat, email, SMS).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Channel = Literal["chat", "email", "sms"]
CHANNELS: tuple[Channel, ...] = ("chat", "email", "sms")


@dataclass(frozen=True)
class Link:
    url: str
    label: str


@dataclass(frozen=True)
class Reply:
    message: str
    vars: dict[str, Any] = field(default_factory=dict)
    links: tuple[Link, ...] = ()
    quick_replies: tuple[str, ...] = ()
