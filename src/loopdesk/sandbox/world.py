"""The sandbox's in-memory state: one shop, its returns, notes, orders and allowlist, and
what Loop's Return Create API draws on (products, return reasons, return methods).

Returns are kept as the raw dicts Loop would send, so whatever a data file holds is
served back byte-for-byte in spirit; only the few fields the simulator filters on are
ever read.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DEFAULT_SHOP: dict[str, Any] = {
    "name": "Company Store",
    "domain": "company.loopreturns.com",
    "currency": "USD",
    "return_window_days": 30,
    # Return Create API (draft returns): a fee charged once per return with an exchange,
    # and whether Loop has enabled the (beta) API for the shop.
    "exchange_fee": "0.00",
    "draft_returns_enabled": True,
}

ALLOWLIST_TYPES = ("order", "product", "email", "product_tag")

# First ids handed out when the data holds none; shaped like the ids in Loop's fixtures.
FIRST_NOTE_ID = 2825000
FIRST_ALLOWLIST_ID = 3022800
FIRST_RETURN_ID = 25044000


def utcnow() -> datetime:
    return datetime.now(UTC)


# Moments the simulator can do arithmetic on (windows, offsets) without overflowing.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def parse_ts(value: str) -> datetime:
    """Any ISO-8601 or Laravel `YYYY-MM-DD HH:MM:SS` timestamp, as an aware UTC datetime.

    `ValueError` for anything else, including moments with no UTC datetime at all
    (`9999-12-31T23:59:59-23:59`) or outside 1970-9998, so every caller's "not a valid
    date" answer covers them.
    """
    parsed = datetime.fromisoformat(value)
    try:
        moment = parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError(f"timestamp out of range: {value!r}") from None
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"timestamp out of range: {value!r}")
    return moment


def iso(moment: datetime) -> str:
    """Loop's list timestamps: `2022-11-02T00:13:08+00:00`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def laravel(moment: datetime) -> str:
    """Laravel's database timestamps (notes, line items): `2022-11-02 00:13:08`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class World:
    shop: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SHOP))
    returns: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    orders: list[dict[str, Any]] = field(default_factory=list)
    allowlist: list[dict[str, Any]] = field(default_factory=list)
    # The shop's catalog as the data file holds it (prices "12.00", `inventory` counts),
    # its return reasons `{id, name, parent?}` and return methods `{id, name, type}`.
    products: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[dict[str, Any]] = field(default_factory=list)
    return_methods: list[dict[str, Any]] = field(default_factory=list)
    # Each person's addresses, primary first (seeded worlds only; files do not carry it).
    customers: list[list[str]] = field(default_factory=list)
    next_note_id: int = FIRST_NOTE_ID
    next_allowlist_id: int = FIRST_ALLOWLIST_ID

    def __post_init__(self) -> None:
        # New ids must never collide with ids the data already holds.
        note_ids = [n["id"] for notes in self.notes.values() for n in notes]
        self.next_note_id = max([self.next_note_id, *(i + 1 for i in note_ids)])
        entry_ids = [e["id"] for e in self.allowlist]
        self.next_allowlist_id = max([self.next_allowlist_id, *(i + 1 for i in entry_ids)])

    @property
    def domain(self) -> str:
        return str(self.shop.get("domain") or DEFAULT_SHOP["domain"])

    def get_return(self, return_id: str) -> dict[str, Any] | None:
        return self.returns.get(return_id)

    def add_note(
        self, return_id: str, content: str, *, at: datetime | None = None
    ) -> dict[str, Any]:
        note = {"id": self.next_note_id, "content": content, "created_at": laravel(at or utcnow())}
        self.next_note_id += 1
        self.notes.setdefault(return_id, []).append(note)
        return note

    def add_allowlist(
        self, type_: str, value: str, *, at: datetime | None = None
    ) -> dict[str, Any]:
        entry = {
            "id": self.next_allowlist_id,
            "type": type_,
            "value": value,
            # Loop accepts `secondary_value` but does not use it; it always answers null.
            "secondary_value": None,
            "created_at": laravel(at or utcnow()),
        }
        self.next_allowlist_id += 1
        self.allowlist.append(entry)
        return entry

    def get_allowlist(self, entry_id: int) -> dict[str, Any] | None:
        return next((e for e in self.allowlist if e["id"] == entry_id), None)

    def delete_allowlist(self, entry_id: int) -> bool:
        entry = self.get_allowlist(entry_id)
        if entry is None:
            return False
        self.allowlist.remove(entry)
        return True

    def find_order(self, name: str) -> dict[str, Any] | None:
        return next((o for o in self.orders if o["name"] == name), None)

    def add_return(self, item: dict[str, Any]) -> None:
        self.returns[str(item["id"])] = item

    def new_return_id(self) -> str:
        """An id above every numeric one held (Loop's ids grow with time)."""
        numeric = [int(k) for k in self.returns if k.isascii() and k.isdigit()]
        return str(max([FIRST_RETURN_ID, *numeric]) + 17)

    def order_ids(self, name: str) -> tuple[str, str]:
        """(Loop's order id, the shop platform's order id) of an order, as its returns
        carry them; an order without returns gets ids derived from its name."""
        for item in self.returns.values():
            if item.get("order_name") == name and item.get("order_id"):
                return str(item["order_id"]), str(item.get("provider_order_id") or "")
        stamp = zlib.crc32(name.encode("utf-8"))
        return str(60000000 + stamp % 10_000_000), str(5800000000000 + stamp)

    def returns_for_order(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.returns.values() if r.get("order_name") == name]

    def find_product(self, product_id: int | None) -> dict[str, Any] | None:
        return next((p for p in self.products if p["id"] == product_id), None)

    def find_variant(self, variant_id: int) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(product, variant) for a variant id anywhere in the catalog."""
        for product in self.products:
            for variant in product["variants"]:
                if variant["id"] == variant_id:
                    return product, variant
        return None

    def orders_for_emails(self, emails: list[str]) -> list[dict[str, Any]]:
        """Orders placed with any of `emails` (case-insensitive), newest first."""
        wanted = {e.strip().casefold() for e in emails}
        found = [o for o in self.orders if o["customer_email"].strip().casefold() in wanted]
        return sorted(found, key=lambda o: parse_ts(o["created_at"]), reverse=True)
