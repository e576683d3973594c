"""The scripted conversations' world: a contract sandbox data file, dates relative to now.

Each person exists for one flow (see `PEOPLE`). Conversations that change something
upstream (an exception granted, an allowlist entry) or that need Loop to have never
answered for them (Loop down) each get a person of their own, so the conversations can
run in any order. Everything else is read-only and shared.

Order names are `#5xxx`, grouped by flow: 51xx start a return, 52xx/53xx returns, 56xx
exceptions, 57xx orders in transit, 58xx Spanish, 59xx upstream down.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SHOP = {
    "name": "Juniper Supply Co.",
    "domain": "juniper-supply.loopreturns.com",
    "currency": "USD",
    "return_window_days": 30,
}
CARRIER_PAGES = {
    "UPS": "https://www.ups.com/track?tracknum=",
    "USPS": "https://tools.usps.com/go/TrackConfirmAction?tLabels=",
    "FedEx": "https://www.fedex.com/fedextrack/?trknbr=",
}


@dataclass(frozen=True)
class Item:
    title: str
    variant: str
    price: str
    sku: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Shipment:
    code: str
    carrier: str
    status: str
    delivered_days_ago: float | None = None
    eta: str | None = None  # as Order Tracking writes it when not a date: "pending"
    eta_in_days: int | None = None  # a date, this many days from now
    with_url: bool = True


@dataclass(frozen=True)
class OrderSpec:
    name: str
    zip: str
    placed_days_ago: float
    shipments: tuple[Shipment, ...]
    items: tuple[Item, ...]


@dataclass(frozen=True)
class ReturnSpec:
    id: str
    order: str
    state: str  # open, closed
    label_status: str  # N/A, pre_transit, in_transit, delivered
    created_days_ago: float
    updated_days_ago: float
    label_days_ago: float | None = None
    outcome: str = "refund"
    carrier: str = "N/A"
    tracking: str = "N/A"


@dataclass(frozen=True)
class Person:
    key: str
    name: str
    emails: tuple[str, ...]
    flow: str  # what the person is for, in a few words
    orders: tuple[OrderSpec, ...] = ()
    returns: tuple[ReturnSpec, ...] = ()
    notes: dict[str, tuple[str, ...]] = field(default_factory=dict)


SWEATER = Item("Merino Crew Sweater", "Oat / M", "98.00", "MCS-OAT-M")
JACKET = Item("Waxed Canvas Field Jacket", "Olive / L", "185.00", "WFJ-OLV-L")
JEANS = Item("Selvedge Straight Jeans", "Indigo / 32x32", "120.00", "SSJ-IND-3232")
TEE = Item("Organic Pocket Tee", "Heather Grey / S", "32.00", "OPT-HGR-S")
BOOTS = Item("Chelsea Boots", "Brown / 9", "210.00", "CHB-BRN-9")
SCARF = Item("Alpaca Scarf", "Charcoal", "64.00", "ALS-CHR")
DRESS_FINAL = Item(
    "Silk Slip Dress - Final Sale", "Midnight / S", "89.00", "FS-SSD-MID-S", ("final-sale",)
)
SWIM_FINAL = Item(
    "Final Sale Swimsuit", "Coral / M", "45.00", "FS-SWM-COR-M", ("final-sale", "swim")
)
BEANIE = Item("Ribbed Beanie", "Rust", "28.00", "RBN-RST")
TOTE = Item("Canvas Tote", "Natural", "36.00", "CVT-NAT")


def _delivered(name: str, days: float, carrier: str = "UPS", code: str = "") -> OrderSpec:
    """One order, one shipment delivered `days` ago (placed five days before that)."""
    number = name.lstrip("#")
    code = code or _code(carrier, number)
    return OrderSpec(
        name,
        _zip(number),
        days + 5,
        (Shipment(code, carrier, "DELIVERED", delivered_days_ago=days),),
        (_item_for(number),),
    )


def _code(carrier: str, number: str) -> str:
    if carrier == "UPS":
        return f"1ZJ5R8{number}000{number}"
    if carrier == "USPS":
        return f"94001118995620{number}00"
    return f"7{number}0{number}00"  # FedEx: twelve digits


_ZIPS = ("10024", "94110", "60614", "02139", "98103", "30306", "78704", "80205", "19103")
_ITEMS = (SWEATER, JACKET, JEANS, TEE, BOOTS, SCARF, BEANIE, TOTE)


def _zip(number: str) -> str:
    return _ZIPS[int(number) % len(_ZIPS)]


def _item_for(number: str) -> Item:
    return _ITEMS[int(number) % len(_ITEMS)]


def _one(name: str, flow: str, *orders: OrderSpec, domain: str = "example.com") -> Person:
    """A person with one address (`first.last@domain`) and orders, no returns; keyed by
    the first name."""
    first, last = name.lower().split(" ")
    return Person(first, name, (f"{first}.{last}@{domain}",), flow, orders=orders)


PEOPLE_LIST: tuple[Person, ...] = (
    # (a) start a return: no returns, orders delivered recently
    Person(
        "maya",
        "Maya Thompson",
        ("maya.thompson@example.com",),
        "no returns; one order delivered 10 days ago",
        orders=(
            OrderSpec(
                "#5101",
                "10024",
                15,
                (Shipment("1ZJ5R851010005101", "UPS", "DELIVERED", delivered_days_ago=10),),
                (SWEATER,),
            ),
        ),
    ),
    Person(
        "devin",
        "Devin Okafor",
        ("devin.okafor@example.net", "dokafor@okafor-design.example.com"),
        "no returns; two recent orders (asks which)",
        orders=(
            OrderSpec(
                "#5111",
                "94110",
                17,
                (Shipment("1ZJ5R851110005111", "UPS", "DELIVERED", delivered_days_ago=12),),
                (JEANS, TEE),
            ),
            OrderSpec(
                "#5112",
                "94110",
                8,
                (Shipment("9400111899562051120", "USPS", "DELIVERED", delivered_days_ago=4),),
                (BEANIE,),
            ),
        ),
    ),
    Person(
        "hannah",
        "Hannah Berg",
        ("hannah.berg@example.org",),
        "no returns; the help desk knows her ZIP",
        orders=(_delivered("#5121", 6),),
    ),
    # (b) returns: several, one, an unused label
    Person(
        "priya",
        "Priya Raman",
        ("priya.raman@example.com",),
        "three returns: in transit, at the warehouse 2 days, refunded last week",
        orders=(
            _delivered("#5201", 24, "USPS"),
            _delivered("#5202", 30),
            _delivered("#5203", 45),
        ),
        returns=(
            ReturnSpec(
                "31005201",
                "#5201",
                "open",
                "in_transit",
                created_days_ago=3,
                updated_days_ago=1,
                label_days_ago=1,
                carrier="USPS",
                tracking="9202090153540052010",
            ),
            ReturnSpec(
                "31005202",
                "#5202",
                "open",
                "delivered",
                created_days_ago=8,
                updated_days_ago=2,
                label_days_ago=2,
                outcome="credit",
                carrier="UPS",
                tracking="1ZRT5202RET0005202",
            ),
            ReturnSpec(
                "31005203",
                "#5203",
                "closed",
                "delivered",
                created_days_ago=20,
                updated_days_ago=5,
                label_days_ago=9,
                carrier="UPS",
                tracking="1ZRT5203RET0005203",
            ),
        ),
        notes={"31005202": ("Parcel received at the Reno warehouse",)},
    ),
    Person(
        "olivia",
        "Olivia Chen",
        ("olivia.chen@example.com",),
        "one open return on its way back",
        orders=(_delivered("#5211", 14, "FedEx"),),
        returns=(
            ReturnSpec(
                "31005211",
                "#5211",
                "open",
                "in_transit",
                created_days_ago=2,
                updated_days_ago=1,
                label_days_ago=1,
                carrier="FedEx",
                tracking="771234525211",
            ),
        ),
    ),
    Person(
        "ben",
        "Ben Alvarez",
        ("ben.alvarez@example.com",),
        "one open return whose label is not used yet",
        orders=(_delivered("#5221", 9),),
        returns=(
            ReturnSpec(
                "31005221",
                "#5221",
                "open",
                "pre_transit",
                created_days_ago=1,
                updated_days_ago=1,
                label_days_ago=1,
                outcome="exchange",
                carrier="USPS",
                tracking="9202090153540052210",
            ),
        ),
    ),
    # (c) a refund overdue: delivered to the warehouse 25 days ago
    Person(
        "kenji",
        "Kenji Watanabe",
        ("kenji.watanabe@example.jp",),
        "one open return at the warehouse for 25 days (refund overdue)",
        orders=(_delivered("#5301", 40),),
        returns=(
            ReturnSpec(
                "31005301",
                "#5301",
                "open",
                "delivered",
                created_days_ago=32,
                updated_days_ago=25,
                label_days_ago=25,
                carrier="UPS",
                tracking="1ZRT5301RET0005301",
            ),
        ),
    ),
    # (d) return-window exceptions: one person per conversation that may be granted one
    _one("Claire Dubois", "delivered 33 days ago", _delivered("#5601", 33)),
    _one("Marcus Reed", "delivered 33 days ago", _delivered("#5602", 33)),
    _one("Aisha Bello", "delivered 33 days ago", _delivered("#5603", 33, "USPS")),
    _one(
        "Hugo Laurent",
        "delivered 33 days ago (asked which)",
        _delivered("#5604", 33),
        domain="example.fr",
    ),
    _one("Isla Moreno", "delivered 33 days ago (quick reply)", _delivered("#5605", 33)),
    _one("Greg Novak", "delivered 60 days ago (past grace)", _delivered("#5611", 60)),
    _one("Linda Park", "delivered 60 days ago (past grace)", _delivered("#5612", 60, "FedEx")),
    _one("Sofia Rossi", "VIP, delivered 41 days ago", _delivered("#5621", 41)),
    _one("James Whitaker", "VIP, delivered 41 days ago", _delivered("#5622", 41)),
    _one("Emily Carter", "not VIP, delivered 41 days ago", _delivered("#5623", 41)),
    _one(
        "Zoe Martin",
        "final-sale item delivered 33 days ago",
        OrderSpec(
            "#5631",
            "98103",
            38,
            (Shipment("1ZJ5R856310005631", "UPS", "DELIVERED", delivered_days_ago=33),),
            (DRESS_FINAL,),
        ),
    ),
    _one(
        "Rachel Kim",
        "final-sale item delivered 33 days ago",
        OrderSpec(
            "#5632",
            "30306",
            38,
            (Shipment("9400111899562056320", "USPS", "DELIVERED", delivered_days_ago=33),),
            (SWIM_FINAL,),
        ),
    ),
    _one(
        "Daniel Brooks",
        "two orders delivered 33 days ago (one exception a year)",
        _delivered("#5641", 33),
        _delivered("#5642", 33, "USPS"),
    ),
    _one(
        "Fatima Khan",
        "two orders delivered 33 days ago (one exception a year)",
        _delivered("#5643", 33),
        _delivered("#5644", 33),
    ),
    _one("Nina Petrova", "delivered 20 days ago (in window)", _delivered("#5651", 20)),
    _one("Chris Walker", "delivered 20 days ago (in window)", _delivered("#5652", 20, "FedEx")),
    _one(
        "Ivan Sokolov",
        "order not delivered yet",
        OrderSpec(
            "#5661",
            "80205",
            6,
            (Shipment("1ZJ5R856610005661", "UPS", "TRANSIT", eta_in_days=2),),
            (BOOTS,),
        ),
    ),
    _one(
        "Paul Grant",
        "order without any shipment (delivery unknown)",
        OrderSpec("#5662", "19103", 50, (), (SCARF,)),
    ),
    # (e) where's my order
    Person(
        "lena",
        "Lena Fischer",
        ("lena.fischer@example.de",),
        "order in transit with an ETA",
        orders=(
            OrderSpec(
                "#5701",
                "10024",
                3,
                (Shipment("1ZJ5R857010005701", "UPS", "TRANSIT", eta_in_days=3),),
                (JACKET,),
            ),
        ),
    ),
    Person(
        "omar",
        "Omar Haddad",
        ("omar.haddad@example.com",),
        "order in transit, ETA pending",
        orders=(
            OrderSpec(
                "#5702",
                "78704",
                2,
                (Shipment("9400111899562057020", "USPS", "TRANSIT", eta="pending"),),
                (TEE,),
            ),
        ),
    ),
    Person(
        "tom",
        "Tom Becker",
        ("tom.becker@example.com",),
        "stalled shipment",
        orders=(
            OrderSpec(
                "#5703",
                "60614",
                12,
                (Shipment("775703577035", "FedEx", "SHIPMENT_STALLED", eta_in_days=-4),),
                (BOOTS,),
            ),
        ),
    ),
    Person(
        "grace",
        "Grace Liu",
        ("grace.liu@example.com",),
        "delivered 2 days ago, never arrived",
        orders=(_delivered("#5704", 2),),
    ),
    Person(
        "amir",
        "Amir Sharif",
        ("amir.sharif@example.com",),
        "two orders: one delivered, one out for delivery",
        orders=(
            _delivered("#5711", 3, "USPS"),
            OrderSpec(
                "#5712",
                "02139",
                2,
                (Shipment("1ZJ5R857120005712", "UPS", "OUT_FOR_DELIVERY", eta_in_days=0),),
                (SCARF,),
            ),
        ),
    ),
    # (f) Spanish
    Person(
        "lucia",
        "Lucía Fernández",
        ("lucia.fernandez@example.es",),
        "Spanish: an order delivered, one in transit, one return on its way",
        orders=(
            OrderSpec(
                "#5801",
                "33125",
                13,
                (Shipment("1ZJ5R858010005801", "UPS", "DELIVERED", delivered_days_ago=8),),
                (SWEATER,),
            ),
            OrderSpec(
                "#5802",
                "33125",
                2,
                (Shipment("9400111899562058020", "USPS", "TRANSIT", eta_in_days=2),),
                (TOTE,),
            ),
            _delivered("#5803", 20),
        ),
        returns=(
            ReturnSpec(
                "31005803",
                "#5803",
                "open",
                "in_transit",
                created_days_ago=4,
                updated_days_ago=1,
                label_days_ago=1,
                carrier="UPS",
                tracking="1ZRT5803RET0005803",
            ),
        ),
    ),
    _one(
        "Carmen Ruiz",
        "Spanish, delivered 33 days ago",
        _delivered("#5811", 33),
        domain="example.mx",
    ),
    # upstream down: nobody else's lookups ever fill the store for these
    Person(
        "victor",
        "Victor Lang",
        ("victor.lang@example.com",),
        "Loop down: one return in transit",
        orders=(_delivered("#5901", 12),),
        returns=(
            ReturnSpec(
                "31005901",
                "#5901",
                "open",
                "in_transit",
                created_days_ago=3,
                updated_days_ago=1,
                label_days_ago=1,
                carrier="UPS",
                tracking="1ZRT5901RET0005901",
            ),
        ),
    ),
    Person(
        "wendy",
        "Wendy Ross",
        ("wendy.ross@example.com",),
        "Loop down: wants to start a return",
        orders=(_delivered("#5911", 5),),
    ),
    Person(
        "xavier",
        "Xavier Diaz",
        ("xavier.diaz@example.com",),
        "Order Tracking down: order in transit",
        orders=(
            OrderSpec(
                "#5921",
                "98103",
                3,
                (Shipment("1ZJ5R859210005921", "UPS", "TRANSIT", eta_in_days=2),),
                (JEANS,),
            ),
        ),
    ),
    _one("Yara Nasser", "Loop down: exception, 33 days", _delivered("#5931", 33)),
    Person(
        "quinn",
        "Quinn Harper",
        ("quinn.harper@example.com",),
        "Loop down: two messages (the hand-off stays)",
        orders=(_delivered("#5941", 7),),
    ),
)
PEOPLE: dict[str, Person] = {p.key: p for p in PEOPLE_LIST}
# Addresses the world knows nothing about: a customer Loop has never seen.
STRANGERS = frozenset({"sam.new@example.com", "not.a.customer@example.org"})


def known_emails() -> frozenset[str]:
    return frozenset(e for p in PEOPLE_LIST for e in p.emails) | STRANGERS


def order(name: str) -> OrderSpec:
    found = [o for p in PEOPLE_LIST for o in p.orders if o.name == name]
    if len(found) != 1:
        raise KeyError(f"the world has {len(found)} orders named {name!r}")
    return found[0]


def deep_link(order_name: str, answer: str) -> str:
    """The link the sandbox's Loop answers for that order and ZIP (or email): the same
    pair always gives the same URL, so a test knows exactly which link is right."""
    token = uuid.uuid5(uuid.NAMESPACE_URL, f"{order_name}|{answer.strip().casefold()}")
    return f"https://{SHOP['domain']}/#/link/{token}"


def status_page(return_id: str) -> str:
    token = uuid.uuid5(uuid.NAMESPACE_URL, f"https://{SHOP['domain']}/return/{return_id}")
    return f"https://{SHOP['domain']}/#/return/{token}"


def tracking_page(code: str) -> str:
    """The tracking page the world gives the shipment with that tracking code."""
    found = [s for p in PEOPLE_LIST for o in p.orders for s in o.shipments if s.code == code]
    if len(found) != 1:
        raise KeyError(f"the world has {len(found)} shipments with tracking code {code!r}")
    return CARRIER_PAGES[found[0].carrier] + code


def known_links() -> frozenset[str]:
    """Every link the guide may send for this world: a return link for an order with its
    own ZIP or email, a return's status page, a shipment's tracking page. Anything else
    was made up."""
    links: set[str] = set()
    for person in PEOPLE_LIST:
        for spec in person.orders:
            links.add(deep_link(spec.name, spec.zip))
            links.add(deep_link(spec.name, person.emails[0]))
            links.update(CARRIER_PAGES[s.carrier] + s.code for s in spec.shipments if s.with_url)
        links.update(status_page(r.id) for r in person.returns)
    return frozenset(links)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _laravel(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _ago(now: datetime, days: float) -> datetime:
    return (now - timedelta(days=days)).replace(microsecond=0)


def _raw_order(spec: OrderSpec, email: str, now: datetime) -> dict[str, Any]:
    number = int(spec.name.lstrip("#"))
    shipments = []
    for s in spec.shipments:
        eta: str | None = s.eta
        if s.eta_in_days is not None:
            eta = (now.date() + timedelta(days=s.eta_in_days)).isoformat()
        shipments.append(
            {
                "trackingCode": s.code,
                "status": s.status,
                "carrierDisplayName": s.carrier,
                "trackingUrl": CARRIER_PAGES[s.carrier] + s.code if s.with_url else None,
                "eta": eta,
                "deliveredAt": None
                if s.delivered_days_ago is None
                else _iso(_ago(now, s.delivered_days_ago)),
            }
        )
    return {
        "name": spec.name,
        "customer_email": email,
        "zip": spec.zip,
        "created_at": _iso(_ago(now, spec.placed_days_ago)),
        "shipments": shipments,
        "line_items": [
            {
                "id": number * 100 + index,
                "title": item.title,
                "variant_title": item.variant,
                "price": item.price,
                "product_id": 7_000_000 + number * 10 + index,
                "variant_id": 8_000_000 + number * 10 + index,
                "sku": item.sku,
                "tags": list(item.tags),
            }
            for index, item in enumerate(spec.items, start=1)
        ],
    }


def _raw_return(spec: ReturnSpec, person: Person, now: datetime) -> dict[str, Any]:
    """A return exactly as Loop's GET /api/v2/returns lists it (reference 2.1)."""
    item = order(spec.order).items[0]
    number = spec.order.lstrip("#")
    created, updated = _ago(now, spec.created_days_ago), _ago(now, spec.updated_days_ago)
    price = item.price
    has_label = spec.label_status != "N/A"
    exchanging = spec.outcome == "exchange"
    refund = price if spec.outcome == "refund" else "0.00"
    credit = price if spec.outcome == "credit" else "0.00"
    label_at = _ago(now, spec.label_days_ago) if spec.label_days_ago is not None else updated
    return {
        "id": spec.id,
        "state": spec.state,
        "created_at": _iso(created),
        "updated_at": _iso(updated),
        "edited_at": None,
        "total": "0.00" if exchanging else price,
        "order_id": f"52{spec.id}",
        "order_name": spec.order,
        "provider_order_id": f"480{spec.id}",
        "order_number": number,
        "provider_order_number": number,
        "outcome": spec.outcome,
        "customer": person.emails[0],
        "origin_country": "United States",
        "origin_country_code": "US",
        "multi_currency": False,
        "currency": SHOP["currency"],
        "return_product_total": price,
        "return_discount_total": "0.00",
        "return_tax_total": "0.00",
        "return_total": price,
        "return_credit_total": price if exchanging else credit,
        "exchange_product_total": price if exchanging else "0.00",
        "exchange_discount_total": "0.00",
        "exchange_tax_total": "0.00",
        "exchange_total": price if exchanging else "0.00",
        "exchange_credit_total": price if exchanging else "0.00",
        "gift_card": "0.00",
        "gift_card_order_name": None,
        "gift_card_order_id": None,
        "handling_fee": "0.00",
        "refund": refund,
        "upsell": "0.00",
        "line_items": [
            {
                "line_item_id": f"{spec.id}01",
                "provider_line_item_id": f"9{spec.id}0",
                "product_id": f"700{spec.id}",
                "variant_id": f"410{spec.id}",
                "sku": item.sku,
                "title": f"{item.title} - {item.variant}",
                "price": f"-{price}",
                "discount": "0.00",
                "tax": "0.00",
                "refund": price,
                "returned_at": _laravel(created),
                "exchange_variant": f"411{spec.id}" if exchanging else "",
                "return_reason": "Item was too big",
                "parent_return_reason": "Item didn't fit",
                "return_comment": "",
                "barcode": "N/A",
                "outcome": "default",
                "provider_restock_location_id": None,
            }
        ],
        "exchanges": [
            {
                "exchange_id": f"82{spec.id}",
                "exchange_order_id": int(f"482{spec.id}"),
                "exchange_order_name": f"EXC-{number}-1",
                "product_id": f"700{spec.id}",
                "variant_id": f"411{spec.id}",
                "sku": f"{item.sku}-X",
                "type": "exchange",
                "title": f"{item.title} - another size",
                "price": price,
                "discount": "0.00",
                "tax": "0.00",
                "total": price,
                "out_of_stock": False,
                "out_of_stock_resolution": None,
            }
        ]
        if exchanging
        else [],
        "carrier": spec.carrier if has_label else "N/A",
        "tracking_number": spec.tracking if has_label else "N/A",
        "label_status": spec.label_status,
        "label_url": None,
        "label_rate": None,
        "package_reference": None,
        "status_page_url": status_page(spec.id),
        "label_updated_at": _iso(label_at) if has_label else "N/A",
        "destination_id": 7295,
        "return_method": "prepaid_label" if has_label else None,
    }


def build_world(now: datetime | None = None) -> dict[str, Any]:
    """The contract's sandbox data, as a dict ready for `json.dumps`."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    returns, orders = [], []
    notes: dict[str, list[dict[str, Any]]] = {}
    note_id = 2_900_000
    for person in PEOPLE_LIST:
        orders += [_raw_order(o, person.emails[0], now) for o in person.orders]
        for spec in person.returns:
            returns.append(_raw_return(spec, person, now))
            for text in person.notes.get(spec.id, ()):
                note_id += 1
                at = _laravel(_ago(now, spec.updated_days_ago))
                notes.setdefault(spec.id, []).append(
                    {"id": note_id, "content": text, "created_at": at}
                )
    return {
        "shop": SHOP,
        "returns": returns,
        "notes": notes,
        "orders": orders,
        "allowlist": [],
    }


def write_world(path: Path, now: datetime | None = None) -> Path:
    path.write_text(json.dumps(build_world(now), indent=1), encoding="utf-8")
    return path
