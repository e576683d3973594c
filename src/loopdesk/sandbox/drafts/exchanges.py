"""The exchange catalog of a returning item: the variants of the product it came from.

Loop's `context.exchange_options[<returning item id>]` is `{product_options[{name,
values}], product_variants[{product_id, variant_id, title, variant_title, product_type,
options{name: value}, image, price, currency, is_available}]}` (fixture
`get_draft_return/exchange_options`). Options come from the variant titles
("L / Blue"), named by the product's `options` when the data gives them ("Size",
"Color"), else "Option 1", "Option 2" ... `is_available` is `inventory > 0`. An
unavailable variant is sent without `price`, as in Loop's fixture, so a client meets a
variant with no price.
"""

from __future__ import annotations

from typing import Any

from loopdesk.sandbox.drafts.money import minor_units
from loopdesk.sandbox.world import World

SEPARATOR = " / "


def option_names(product: dict[str, Any]) -> list[str]:
    named = [str(n) for n in product.get("options") or ()]
    parts = max((len(v["title"].split(SEPARATOR)) for v in product["variants"]), default=1)
    return named[:parts] + [f"Option {n}" for n in range(len(named) + 1, parts + 1)]


def variant_options(product: dict[str, Any], variant: dict[str, Any]) -> dict[str, str]:
    values = variant["title"].split(SEPARATOR)
    return dict(zip(option_names(product), values, strict=False))


def is_available(variant: dict[str, Any]) -> bool:
    return int(variant.get("inventory", 0)) > 0


def price_of(variant: dict[str, Any], currency: str) -> int:
    return minor_units(str(variant.get("price") or "0"), currency)


def catalog(world: World, line: dict[str, Any]) -> dict[str, Any]:
    """The exchange options for one order line item (empty when its product is unknown)."""
    product = world.find_product(line.get("product_id"))
    if product is None:
        return {"product_options": [], "product_variants": []}
    currency = str(world.shop.get("currency", "USD"))
    names = option_names(product)
    values: dict[str, list[str]] = {name: [] for name in names}
    variants = []
    for variant in product["variants"]:
        options = variant_options(product, variant)
        for name, value in options.items():
            if value not in values[name]:
                values[name].append(value)
        row: dict[str, Any] = {
            "product_id": product["id"],
            "variant_id": variant["id"],
            "title": product["title"],
            "variant_title": variant["title"],
            "product_type": product.get("product_type"),
            "options": options,
            "image": variant.get("image") or product.get("image"),
        }
        if is_available(variant):
            row["price"] = price_of(variant, currency)
        row["currency"] = currency
        row["is_available"] = is_available(variant)
        variants.append(row)
    return {
        "product_options": [{"name": n, "values": v} for n, v in values.items()],
        "product_variants": variants,
    }


def exchange_variant(
    world: World, line: dict[str, Any], variant_id: int
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(product, variant) when `variant_id` is a variant of the line item's product."""
    found = world.find_variant(variant_id)
    if found is None or found[0]["id"] != line.get("product_id"):
        return None
    return found
