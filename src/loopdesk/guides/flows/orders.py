"""Which order the customer means: named in the message or earlier, or chosen from
their recent orders."""

from __future__ import annotations

from loopdesk.customers.view import CustomerView

MAX_OFFERED = 5


def _key(name: str) -> str:
    return name.strip().lstrip("#").casefold()


def recent_orders(view: CustomerView) -> list[str]:
    """The customer's order names, most recent first as the sources give them: Order
    Tracking's orders, then the orders of their returns (newest first)."""
    names: dict[str, str] = {}
    for order in view.orders:
        names.setdefault(_key(order.name), order.name)
    for ret in view.returns:
        if ret.order.name:
            names.setdefault(_key(ret.order.name), ret.order.name)
    return list(names.values())


def as_known(name: str, known: list[str]) -> str:
    """The shop's own spelling of `name` when the customer's orders hold it (`1086` ->
    `#1086`), else the name as read from the message."""
    wanted = _key(name)
    return next((k for k in known if _key(k) == wanted), name)


def same_order(a: str, b: str) -> bool:
    return _key(a) == _key(b)
