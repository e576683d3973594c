"""What a lookup answers: the contract's `{"returns", "orders", "facts", "meta"}`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from loopdesk.domain.facts import facts as compute_facts
from loopdesk.domain.models import LoopReturn, Order

# `fields`: a return is shown, but one of its fields (named in `field`) was unusable
# and reads blank; the request itself succeeded.
IssueSource = Literal["returns", "notes", "orders", "fields", "lookup"]


class LookupIssue(BaseModel):
    """One upstream request that failed, or one field shown blank; the rest of the
    data is still in the view."""

    model_config = ConfigDict(frozen=True)

    # "lookup": about the answer as a whole (e.g. nothing could be fetched nor was stored).
    source: IssueSource
    code: str
    message: str
    email: str | None = None
    returnId: str | None = None
    field: str | None = None


class LookupMeta(BaseModel):
    emails: list[str]
    source: Literal["loop", "sandbox", "store"]
    fetchedAt: str
    stale: bool = False
    asOf: str | None = None
    errors: list[LookupIssue] = Field(default_factory=list)
    # Addresses past `lookup_max_emails`, not looked up (`notices` says so in words).
    droppedEmails: list[str] = Field(default_factory=list)
    notices: list[str] = Field(default_factory=list)


class CustomerView(BaseModel):
    returns: list[LoopReturn]
    orders: list[Order]
    facts: dict[str, Any] = Field(default_factory=dict)
    meta: LookupMeta
    # From the exceptions ledger, for the `exceptions_granted` fact (not shown itself).
    exceptions_granted: int = Field(default=0, exclude=True)

    def to_json(self) -> dict[str, Any]:
        return {
            "returns": [r.to_json() for r in self.returns],
            "orders": [o.to_json() for o in self.orders],
            # Routing facts from these same returns and orders, as of now (no profile
            # attributes here, so `vip` reads false).
            "facts": self.facts
            or compute_facts(
                self.returns,
                self.orders,
                datetime.now(UTC),
                exceptions_granted=self.exceptions_granted,
            ).to_json(),
            "meta": self.meta.model_dump(mode="json", exclude_none=True),
        }
