"""What an action answers over HTTP, whether Loop agreed or refused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loopdesk.errors import LoopdeskError


@dataclass(frozen=True)
class ActionOutcome:
    status: int
    body: dict[str, Any]
    action: str = ""  # the audited action's name, for metrics; not part of the answer

    @property
    def ok(self) -> bool:
        return self.status < 400

    @classmethod
    def from_error(cls, exc: LoopdeskError, action: str = "") -> ActionOutcome:
        return cls(exc.http_status, exc.to_body(), action)

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "body": self.body}

    @classmethod
    def from_json(cls, data: dict[str, Any], action: str = "") -> ActionOutcome:
        return cls(int(data["status"]), dict(data["body"]), action)
