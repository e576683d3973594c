"""Draft returns as the sandbox keeps them, and the book that holds them.

Loop's states (reference "Draft return lifecycle"): `created` after initialize,
`items-finalized` after finalize, then one of the terminal `submitted`, `cancelled`,
`expired`. A draft expires a fixed time after it was created (Loop documents expiry but
not its length: `LOOPDESK_SANDBOX_DRAFT_TTL_SECONDS`, default a day). The book's clock
can be moved forward (`/_sandbox/draft-returns/clock`) so a test can age drafts and
orders without waiting; the returns a submit creates keep real timestamps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from loopdesk.sandbox.world import utcnow

CREATED = "created"
ITEMS_FINALIZED = "items-finalized"
SUBMITTED = "submitted"
CANCELLED = "cancelled"
EXPIRED = "expired"
TERMINAL = (SUBMITTED, CANCELLED, EXPIRED)

RETURN_TYPES = ("credit", "exchange")
CREDIT_TYPES = ("refund", "gift")
TOTALS_SHAPES = ("peer", "documented")
DISABLED_STATUSES = (401, 403)

DEFAULT_TTL = timedelta(hours=24)
# First ids handed out, shaped like those in Loop's fixtures.
FIRST_DRAFT_ID = 900123456
FIRST_RETURNING_ITEM_ID = 757100
FIRST_CART_ITEM_ID = 5682


@dataclass
class ReturningItem:
    id: int
    order_line_item_id: int
    return_type: str = "credit"
    reason_id: int | None = None


@dataclass
class CartItem:
    """An exchange: the variant a returning item is swapped for."""

    id: int
    variant_id: int
    returning_item_id: int
    variant_title: str
    price: int  # minor units


@dataclass
class Draft:
    id: int
    order_name: str
    secondary_input: str
    is_gift: bool
    created_at: datetime
    state: str = CREATED
    returning_items: list[ReturningItem] = field(default_factory=list)
    cart_items: list[CartItem] = field(default_factory=list)
    # A gift return can only become store credit, so it starts as one.
    credit_type: str | None = None
    return_method_id: int | None = None
    # Set by the control route that stands in for the customer paying what is due.
    difference_paid: bool = False
    return_id: str | None = None

    def item(self, item_id: int) -> ReturningItem | None:
        return next((i for i in self.returning_items if i.id == item_id), None)

    def cart_item_for(self, item_id: int) -> CartItem | None:
        return next((c for c in self.cart_items if c.returning_item_id == item_id), None)

    def remove_item(self, item_id: int) -> None:
        self.returning_items = [i for i in self.returning_items if i.id != item_id]
        self.drop_exchange(item_id)

    def drop_exchange(self, item_id: int) -> None:
        self.cart_items = [c for c in self.cart_items if c.returning_item_id != item_id]

    @property
    def needs_credit_type(self) -> bool:
        """Some value goes back as money or credit: Loop must know which."""
        return any(i.return_type == "credit" for i in self.returning_items)


@dataclass
class DraftBook:
    """Every draft of one sandbox, its ids, clock and switches."""

    ttl: timedelta = DEFAULT_TTL
    # `peer`: GET .../totals answers `{"data": {...currencyCode}}` as Gladly's app reads
    # it; `documented`: the draft response, whose `draft_return.totals` uses `currency`.
    totals_shape: str = "peer"
    # What the draft endpoints answer while the shop has no Return Create API.
    disabled_status: int = 403
    clock: Callable[[], datetime] = utcnow
    offset: timedelta = timedelta(0)
    drafts: dict[int, Draft] = field(default_factory=dict)
    next_draft_id: int = FIRST_DRAFT_ID
    next_item_id: int = FIRST_RETURNING_ITEM_ID
    next_cart_id: int = FIRST_CART_ITEM_ID

    def now(self) -> datetime:
        return self.clock() + self.offset

    def open(self, order_name: str, secondary_input: str, is_gift: bool) -> Draft:
        draft = Draft(
            self.next_draft_id,
            order_name,
            secondary_input,
            is_gift,
            self.now(),
            credit_type="gift" if is_gift else None,
        )
        # Loop's ids are not consecutive; neither are ours, so no client counts on it.
        self.next_draft_id += 7
        self.drafts[draft.id] = draft
        return draft

    def get(self, draft_id: int) -> Draft | None:
        """The draft, expired first if its time is up."""
        draft = self.drafts.get(draft_id)
        live = draft is not None and draft.state not in TERMINAL
        if live and draft is not None and self.now() >= draft.created_at + self.ttl:
            draft.state = EXPIRED
        return draft

    def new_item(self, draft: Draft, line_item_id: int) -> ReturningItem:
        item = ReturningItem(self.next_item_id, line_item_id)
        self.next_item_id += 22
        draft.returning_items.append(item)
        return item

    def new_cart_item(
        self, draft: Draft, item: ReturningItem, variant_id: int, title: str, price: int
    ) -> CartItem:
        draft.drop_exchange(item.id)
        cart = CartItem(self.next_cart_id, variant_id, item.id, title, price)
        self.next_cart_id += 1
        draft.cart_items.append(cart)
        return cart
