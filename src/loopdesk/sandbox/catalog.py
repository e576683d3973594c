"""Fixed vocabularies for the seeded world: enumerations, products, people, carriers.

Enumerations follow the reference (loop-api.md sections 6 and 8.2). Everything here is
data; the choices among it are made by `seed` with a seeded RNG.
"""

from __future__ import annotations

from dataclasses import dataclass

RETURN_STATES = ("open", "closed", "cancelled", "expired", "review")
OUTCOMES = (
    "refund",
    "credit",
    "exchange",
    "gift_card",
    "exchange+refund",
    "exchange+credit",
    "store_credit",
)
LABEL_STATUSES = (
    "N/A",
    "new",
    "pending",
    "pre_transit",
    "in_transit",
    "out_for_delivery",
    "delivered",
    "error",
    "failure",
)
# Which return states make sense with each label status: an expired return is one whose
# label never left new/pre_transit; a closed one has arrived or never needed a label.
STATES_FOR_LABEL: dict[str, tuple[str, ...]] = {
    "N/A": ("closed", "cancelled", "review", "open"),
    "new": ("open", "expired", "cancelled"),
    "pending": ("open",),
    "pre_transit": ("open", "expired"),
    "in_transit": ("open", "review"),
    "out_for_delivery": ("open",),
    "delivered": ("closed", "open", "review"),
    "error": ("open", "expired"),
    "failure": ("open", "cancelled"),
}
# Realistic mix once every combination has been shown at least once: the state is
# drawn first, then a label status that fits it.
STATE_WEIGHTS = (30, 45, 8, 7, 10)
LABEL_WEIGHTS = {
    "N/A": 15,
    "new": 8,
    "pending": 4,
    "pre_transit": 8,
    "in_transit": 15,
    "out_for_delivery": 5,
    "delivered": 35,
    "error": 5,
    "failure": 5,
}
OUT_OF_STOCK_RESOLUTIONS = ("refund", "store_credit", "gift_card")

# Order Tracking shipment statuses; the in-flight ones get an ETA and a recent order.
SHIPMENT_STATUSES = (
    "PRE_TRANSIT",
    "TRANSIT",
    "SHIPMENT_STALLED",
    "ATTEMPTED_DELIVERY",
    "DELIVERED",
    "RETURNED",
    "ERROR",
    "OUT_FOR_DELIVERY",
    "SHIPMENT_CREATED",
    "READY_FOR_PICKUP",
)
FINISHED_SHIPMENT_STATUSES = ("DELIVERED", "RETURNED")


@dataclass(frozen=True)
class Product:
    title: str
    price: str
    sku: str
    variants: tuple[str, ...]
    # What each part of a variant title names ("Color / Size"), for exchange catalogs.
    options: tuple[str, ...] = ()
    product_type: str | None = None


PRODUCTS = (
    Product(
        "t-shirt (short): product managers",
        "29.99",
        "TS-PM",
        ("Small", "Medium", "Large"),
        ("Size",),
        "T-Shirts",
    ),
    Product(
        "Linen Shirt",
        "54.00",
        "LS",
        ("White / S", "White / M", "White / L", "Navy / M"),
        ("Color", "Size"),
        "Shirts",
    ),
    Product(
        "Merino Crew Sweater",
        "89.00",
        "MCS",
        ("Oat / S", "Oat / M", "Charcoal / M"),
        ("Color", "Size"),
        "Knitwear",
    ),
    Product(
        "Slim Chino",
        "68.00",
        "SC",
        ("30 / 30", "32 / 30", "32 / 32", "34 / 32"),
        ("Waist", "Length"),
        "Trousers",
    ),
    Product("Canvas Sneaker", "75.00", "CSN", ("8", "9", "10", "11"), ("Size",), "Shoes"),
    Product(
        "Packable Rain Jacket",
        "120.00",
        "PRJ",
        ("Olive / M", "Olive / L", "Black / L"),
        ("Color", "Size"),
        "Outerwear",
    ),
    Product("Wool Beanie", "24.00", "WB", ("Rust", "Black", "Heather Grey"), ("Color",), None),
    Product("Everyday Tote", "45.00", "ET", ("Black", "Sand"), ("Color",), "Bags"),
    Product("Running Short", "38.50", "RS", ("S", "M", "L"), ("Size",), "Shorts"),
    Product("Silk Scarf", "62.25", "SS", ("Floral", "Stripe"), ("Pattern",), "Accessories"),
)
# The shop's stock for exchanges, by (product, variant) index: these are sold out, these
# cost more than the rest of their product (so exchanging into them leaves an amount due).
SOLD_OUT = frozenset({(1, 3), (2, 0), (4, 3)})
VARIANT_PRICES = {(5, 2): "135.00", (2, 2): "99.00"}

# (parent_return_reason, return_reason), as Loop's two-level reasons read.
RETURN_REASONS = (
    ("Item didn't fit", "Item was too big"),
    ("Item didn't fit", "Item was too small"),
    ("Changed mind", "Style not as expected"),
    ("Changed mind", "No longer needed"),
    ("Damaged or defective", "Arrived damaged"),
    ("Damaged or defective", "Stopped working"),
    ("Wrong item", "Received the wrong size"),
    ("Quality", "Material feels cheap"),
)
RETURN_COMMENTS = (
    "Sleeves were longer than the size chart says.",
    "Colour looked different in person.",
    "Box was crushed on arrival.",
    "Ordered two sizes to try.",
)
NOTE_TEXTS = (
    "Customer dropped off at UPS",
    "Customer asked for an update on the refund",
    "Exchange item out of stock; offered store credit",
    "Label re-sent to the customer's other email",
    "Warehouse received the package, inspecting items",
    "Approved exception: outside the return window by 2 days",
    "Customer says the label will not scan at drop-off",
    "Damage confirmed from photos, no need to return the item",
)

FIRST_NAMES = (
    "Ava", "Ben", "Chloe", "Dev", "Elena", "Farah", "Gus", "Hana", "Ivan", "Jade",
    "Kofi", "Lena", "Mateo", "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tara",
    "Umar", "Vera", "Wes", "Xin", "Yara", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Adams", "Baker", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito",
    "Jensen", "Khan", "Lopez", "Moreau", "Novak", "Okafor", "Patel", "Rossi", "Silva",
    "Tanaka", "Walsh",
)  # fmt: skip
# Reserved example domains only: seeded addresses can never reach a real mailbox.
EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com")

# Carrier display name -> (tracking URL prefix, service level).
CARRIERS: dict[str, tuple[str, str]] = {
    "UPS": ("https://www.ups.com/track?tracknum=", "Ground"),
    "USPS": ("https://tools.usps.com/go/TrackConfirmAction?tLabels=", "Priority Mail"),
    "FedEx": ("https://www.fedex.com/fedextrack/?trknbr=", "Home Delivery"),
    "DHL Express": ("https://www.dhl.com/en/express/tracking.html?AWB=", "Express Worldwide"),
}
RETURN_LABEL_CARRIERS = ("USPS", "UPS", "FedEx")
DESTINATION_IDS = (7295, 7296, 8120)
