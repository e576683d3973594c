"""The seeded, deterministic world: the same seed always yields the same ids and contents.

Timestamps are relative to `now` (default: today 00:00 UTC) so the data stays inside a
365-day lookback and is stable within a day. The first returns walk through every
label status x compatible state x outcome, so any world with more than ~63 returns
shows them all; later ones follow a realistic mix.
"""

from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

from loopdesk.sandbox.catalog import (
    CARRIERS,
    EMAIL_DOMAINS,
    FINISHED_SHIPMENT_STATUSES,
    FIRST_NAMES,
    LABEL_STATUSES,
    LABEL_WEIGHTS,
    LAST_NAMES,
    OUTCOMES,
    RETURN_STATES,
    SHIPMENT_STATUSES,
    STATE_WEIGHTS,
    STATES_FOR_LABEL,
)
from loopdesk.sandbox.seed_drafts import (
    DRAFT_PERSONAS,
    default_reasons,
    default_return_methods,
    order_line_items,
    persona_orders,
    persona_seed,
    products,
)
from loopdesk.sandbox.seed_returns import (
    OrderRef,
    ReturnPlan,
    build_notes,
    build_return,
    plan_return,
    tracking_code,
    tracking_url,
)
from loopdesk.sandbox.world import (
    DEFAULT_SHOP,
    FIRST_NOTE_ID,
    FIRST_RETURN_ID,
    World,
    iso,
    laravel,
)

DEMO_EMAILS = ("primary@email.com", "secondary@email.com")
# The demo's orders keep the names Loop's own fixtures use, so docs and demos can cite them.
DEMO_ORDER_NAMES = ("#1086", "#1120")
DEMO_ZIP = "43215"
FIRST_ORDER_NUMBER = 1001
_COVERAGE = len(LABEL_STATUSES) * len(OUTCOMES)  # 63: every label x outcome pair once
_IN_FLIGHT = tuple(s for s in SHIPMENT_STATUSES if s not in FINISHED_SHIPMENT_STATUSES)


def demo_emails() -> list[str]:
    """The fixed demo customer's two addresses (one person), primary first."""
    return list(DEMO_EMAILS)


@dataclass
class _Return:
    plan: ReturnPlan
    notes: int


@dataclass
class _Order:
    email: str
    zip: str
    created: datetime
    shipments: list[dict[str, Any]]
    returns: list[_Return] = field(default_factory=list)
    name: str | None = None  # fixed for the demo customer, numbered otherwise
    line_items: list[dict[str, Any]] | None = None


@dataclass
class _Cycles:
    # Walk enumerations in order first so small worlds still cover every value.
    returns: itertools.count[int] = field(default_factory=itertools.count)
    shipments: itertools.count[int] = field(default_factory=itertools.count)


def generate_world(seed: int = 1086, customers: int = 240, now: datetime | None = None) -> World:
    """A deterministic world of `customers` people (the demo customer first)."""
    rng = Random(seed)
    now = _today() if now is None else now
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    people = _people(rng, max(customers, 1) - 1)
    cycles = _Cycles()
    orders = _demo_orders(rng, now)
    for emails in people:
        zip_code = f"{rng.randrange(1000, 99999):05d}"
        orders.extend(_person_orders(rng, now, emails, zip_code, cycles))
    customers_list = [list(DEMO_EMAILS), *people]
    personas = customers > 1
    if personas:
        orders.extend(_exception_orders(Random(seed * 7919 + 7), now))
        customers_list.extend([p.email] for p in EXCEPTION_PERSONAS)
    reserved = {p.order_name for p in DRAFT_PERSONAS} if personas else set()
    world = _assemble(rng, orders, customers_list, reserved)
    if personas:
        # Added after the others so their Loop order ids stay as they were.
        world.orders.extend(persona_orders(persona_seed(seed), now))
        world.orders.sort(key=lambda o: o["created_at"])
        world.customers.extend([p.email] for p in DRAFT_PERSONAS)
    return world


def _today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _people(rng: Random, count: int) -> list[list[str]]:
    people = []
    for number in range(1, count + 1):
        first, last = rng.choice(FIRST_NAMES).lower(), rng.choice(LAST_NAMES).lower()
        domains = rng.sample(EMAIL_DOMAINS, 3)
        # The number keeps addresses unique across people with the same name.
        emails = [
            f"{first}.{last}{number}@{domains[0]}",
            f"{first[0]}{last}{number}@{domains[1]}",
            f"{first}{number}@{domains[2]}",
        ]
        people.append(emails[: rng.choices((1, 2, 3), weights=(45, 35, 20))[0]])
    return people


def _recase(email: str) -> str:
    """`Jane.Doe@Example.com`: the same address as typed by a person or another system."""
    local, _, domain = email.partition("@")
    return ".".join(p.capitalize() for p in local.split(".")) + "@" + domain.capitalize()


def _order_email(rng: Random, emails: list[str]) -> str:
    # Most orders use the primary address.
    return emails[0] if rng.random() < 0.6 else rng.choice(emails)


def _scenario(rng: Random, k: int) -> tuple[str, str, str, bool]:
    """(state, outcome, label_status, out_of_stock) for the k-th seeded return."""
    if k < _COVERAGE:
        label = LABEL_STATUSES[k % len(LABEL_STATUSES)]
        states = STATES_FOR_LABEL[label]
        state = states[(k // len(LABEL_STATUSES)) % len(states)]
        return state, OUTCOMES[k % len(OUTCOMES)], label, (k // len(OUTCOMES)) % 2 == 0
    state = rng.choices(RETURN_STATES, weights=STATE_WEIGHTS)[0]
    labels = [(label, w) for label, w in LABEL_WEIGHTS.items() if state in STATES_FOR_LABEL[label]]
    label = rng.choices([x for x, _ in labels], weights=[w for _, w in labels])[0]
    return state, rng.choice(OUTCOMES), label, rng.random() < 0.3


def _person_orders(
    rng: Random, now: datetime, emails: list[str], zip_code: str, cycles: _Cycles
) -> list[_Order]:
    orders = []
    for _ in range(rng.choices((0, 1, 2, 3), weights=(15, 45, 28, 12))[0]):
        state, outcome, label, out_of_stock = _scenario(rng, next(cycles.returns))
        # A return shows the address its order was placed with.
        email = _order_email(rng, emails)
        plan = plan_return(
            rng,
            now,
            state=state,
            outcome=outcome,
            label_status=label,
            customer=_recase(email) if rng.random() < 0.15 else email,
            out_of_stock=out_of_stock,
        )
        notes = rng.choices((0, 1, 2, 3), weights=(65, 20, 10, 5))[0]
        orders.append(_returned_order(rng, email, zip_code, plan, notes))
    extra = rng.choices((0, 1, 2), weights=(30, 45, 25))[0]
    for _ in range(max(extra, 0 if orders else 1)):
        k = next(cycles.shipments)
        status = SHIPMENT_STATUSES[k % len(SHIPMENT_STATUSES)]
        orders.append(_shipping_order(rng, now, _order_email(rng, emails), zip_code, status))
    return orders


def _returned_order(rng: Random, email: str, zip_code: str, plan: ReturnPlan, notes: int) -> _Order:
    """The order a return came from: placed days before, every package delivered."""
    created = plan.created - timedelta(days=rng.randint(4, 15), seconds=rng.randrange(86_400))
    shipments = [
        _shipment(rng, created, "DELIVERED", delivered_by=plan.created)
        for _ in range(rng.choices((1, 2), weights=(80, 20))[0])
    ]
    return _Order(email, zip_code, created, shipments, [_Return(plan, notes)])


def _shipping_order(rng: Random, now: datetime, email: str, zip_code: str, status: str) -> _Order:
    """An order without returns; packages still moving belong to a recent order."""
    if status in FINISHED_SHIPMENT_STATUSES:
        created = now - timedelta(days=rng.randint(5, 330), seconds=rng.randrange(86_400))
        others: tuple[str, ...] = FINISHED_SHIPMENT_STATUSES
    else:
        created = now - timedelta(hours=rng.randint(2, 12 * 24))
        others = (*_IN_FLIGHT, "DELIVERED")
    statuses = [status] + [
        rng.choice(others) for _ in range(rng.choices((0, 1, 2), weights=(70, 20, 10))[0])
    ]
    shipments = [_shipment(rng, created, s, delivered_by=now) for s in statuses]
    return _Order(email, zip_code, created.replace(microsecond=0), shipments)


def _shipment(
    rng: Random, order_created: datetime, status: str, *, delivered_by: datetime
) -> dict[str, Any]:
    carrier = rng.choice(tuple(CARRIERS))
    code = tracking_code(rng, carrier)
    eta = None
    if status not in (*FINISHED_SHIPMENT_STATUSES, "ERROR"):
        expected = order_created + timedelta(days=rng.randint(5, 8))
        eta = max(expected, delivered_by + timedelta(days=1)).date().isoformat()
        # Order Tracking also says "pending" when the carrier has given no date yet
        # (chosen from the code, so the main RNG's sequence is untouched).
        if zlib.crc32(code.encode()) % 5 == 0:
            eta = "pending"
    delivered_at = None
    if status == "DELIVERED":
        latest = max(delivered_by - timedelta(hours=1), order_created)
        moment = order_created + (latest - order_created) * rng.uniform(0.3, 0.9)
        delivered_at = iso(moment.replace(microsecond=0))
    return {
        "trackingCode": code,
        "status": status,
        "carrierDisplayName": carrier,
        "trackingUrl": tracking_url(carrier, code),
        "eta": eta,
        "deliveredAt": delivered_at,
    }


# The demo customer: (order, state, outcome, label, customer as shown, out of stock, notes).
_DEMO_RETURNS = (
    (0, "closed", "credit", "N/A", "primary@email.com", False, 0),
    (0, "closed", "refund", "delivered", "primary@email.com", False, 2),
    (0, "expired", "gift_card", "new", "primary@email.com", False, 0),
    (0, "review", "exchange+refund", "delivered", "Primary@Email.com", False, 1),
    (1, "open", "refund", "in_transit", "secondary@email.com", False, 1),
    (1, "open", "exchange", "pre_transit", "secondary@email.com", True, 0),
    (1, "cancelled", "store_credit", "N/A", "Secondary@Email.com", False, 0),
    (1, "open", "exchange+credit", "out_for_delivery", "secondary@email.com", False, 1),
)


def _demo_orders(rng: Random, now: datetime) -> list[_Order]:
    """Two orders (one per address) and eight returns across both."""
    placed = (now - timedelta(days=90, hours=9, minutes=37), now - timedelta(days=12, hours=5))
    orders = [
        _Order(
            DEMO_EMAILS[0],
            DEMO_ZIP,
            placed[0],
            [_shipment(rng, placed[0], "DELIVERED", delivered_by=placed[0] + timedelta(days=4))],
            name=DEMO_ORDER_NAMES[0],
        ),
        _Order(
            DEMO_EMAILS[1],
            DEMO_ZIP,
            placed[1],
            [
                _shipment(rng, placed[1], "DELIVERED", delivered_by=placed[1] + timedelta(days=3)),
                _shipment(rng, placed[1], "TRANSIT", delivered_by=now),
            ],
            name=DEMO_ORDER_NAMES[1],
        ),
    ]
    for step, (which, state, outcome, label, customer, oos, notes) in enumerate(_DEMO_RETURNS):
        created = placed[which] + timedelta(days=4 + step % 4 * 2, hours=step * 3)
        plan = plan_return(
            rng,
            now,
            state=state,
            outcome=outcome,
            label_status=label,
            customer=customer,
            out_of_stock=oos,
            created=created,
        )
        orders[which].returns.append(_Return(plan, notes))
    return orders


@dataclass(frozen=True)
class ExceptionPersona:
    """A customer whose one order was delivered `days_ago` days before today, for the
    return-window exception flows (default policy: 30-day window, 7 days of grace, 14
    for a VIP)."""

    email: str
    order_name: str
    days_ago: int
    items: tuple[tuple[str, str, int, tuple[str, ...]], ...]  # title, variant, id, tags
    note: str


EXCEPTION_PERSONAS = (
    ExceptionPersona(
        "in.grace@example.com",
        "#7001",
        33,
        (("Linen Shirt", "White / M", 7001001, ()),),
        "window closed 3 days ago, within the 7-day grace: eligible",
    ),
    ExceptionPersona(
        "past.grace@example.com",
        "#7002",
        50,
        (("Slim Chino", "32 / 32", 7002001, ()), ("Wool Beanie", "Rust", 7002002, ())),
        "window closed 20 days ago, past any grace (a VIP's too): refused",
    ),
    ExceptionPersona(
        "final.sale@example.com",
        "#7003",
        33,
        (("Silk Scarf - Final Sale", "Floral", 7003001, ("final-sale",)),),
        "within the grace, but its only item is final sale: refused",
    ),
    ExceptionPersona(
        "vip.grace@example.com",
        "#7004",
        40,
        (("Merino Crew Sweater", "Oat / M", 7004001, ()),),
        "window closed 10 days ago: past the 7-day grace, within a VIP's 14",
    ),
)
EXCEPTION_ZIP = "10024"


def _exception_orders(rng: Random, now: datetime) -> list[_Order]:
    """One delivered order per exception persona, drawn from its own RNG so the other
    customers' returns and orders are drawn as before."""
    orders = []
    for persona in EXCEPTION_PERSONAS:
        delivered = now - timedelta(days=persona.days_ago) + timedelta(hours=15)
        created = delivered - timedelta(days=4, hours=6)
        carrier = rng.choice(tuple(CARRIERS))
        code = tracking_code(rng, carrier)
        shipment = {
            "trackingCode": code,
            "status": "DELIVERED",
            "carrierDisplayName": carrier,
            "trackingUrl": tracking_url(carrier, code),
            "eta": None,
            "deliveredAt": iso(delivered),
        }
        items = [
            {
                "id": item_id,
                "title": title,
                "variant_title": variant,
                "price": "54.00",
                "product_id": item_id // 1000,
                "variant_id": item_id * 10 + 1,
                "tags": list(tags),
            }
            for title, variant, item_id, tags in persona.items
        ]
        orders.append(
            _Order(
                persona.email,
                EXCEPTION_ZIP,
                created,
                [shipment],
                name=persona.order_name,
                line_items=items,
            )
        )
    return orders


def _assemble(
    rng: Random, drafts: list[_Order], customers: list[list[str]], reserved: set[str]
) -> World:
    shop = dict(DEFAULT_SHOP)
    drafts.sort(key=lambda o: o.created)
    pending: list[tuple[_Return, OrderRef]] = []
    orders = []
    taken = {d.name for d in drafts if d.name} | reserved
    numbers = (n for n in itertools.count(FIRST_ORDER_NUMBER) if f"#{n}" not in taken)
    for index, draft in enumerate(drafts):
        ref = OrderRef(
            name=draft.name or f"#{next(numbers)}",
            loop_id=str(50265228 + index * 7),
            provider_id=str(4803021602967 + index * 104729),
        )
        order = {
            "name": ref.name,
            "customer_email": draft.email,
            "zip": draft.zip,
            "created_at": iso(draft.created),
            "shipments": draft.shipments,
        }
        if draft.line_items is not None:
            order["line_items"] = draft.line_items
        orders.append(order)
        pending.extend((r, ref) for r in draft.returns)
    # Loop's ids grow with time, so number returns in creation order.
    pending.sort(key=lambda item: item[0].plan.created)
    returns: dict[str, dict[str, Any]] = {}
    written: list[tuple[datetime, str, str]] = []
    rid = FIRST_RETURN_ID
    for item, ref in pending:
        rid += rng.randint(3, 41)
        returns[str(rid)] = build_return(rng, rid=str(rid), plan=item.plan, order=ref, shop=shop)
        written.extend((at, str(rid), text) for at, text in build_notes(rng, item.plan, item.notes))
    notes: dict[str, list[dict[str, Any]]] = {}
    for note_id, (at, return_id, text) in enumerate(sorted(written), start=FIRST_NOTE_ID):
        notes.setdefault(return_id, []).append(
            {"id": note_id, "content": text, "created_at": laravel(at)}
        )
    by_order: dict[str, list[dict[str, Any]]] = {}
    for built in returns.values():
        by_order.setdefault(built["order_name"], []).append(built)
    for order in orders:
        if "line_items" not in order:
            order["line_items"] = order_line_items(order, by_order.get(str(order["name"]), []))
    return World(
        shop=shop,
        returns=returns,
        notes=notes,
        orders=orders,
        allowlist=[],
        customers=customers,
        products=products(),
        reasons=default_reasons(),
        return_methods=default_return_methods(),
    )
