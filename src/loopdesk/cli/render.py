"""The sidebar view as a readable terminal layout."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from loopdesk.customers.view import CustomerView
from loopdesk.domain.models import LoopReturn, Order

STATE_STYLES = {
    "open": "yellow",
    "review": "magenta",
    "closed": "green",
    "cancelled": "dim",
    "expired": "red",
}


def render_view(view: CustomerView) -> RenderableType:
    parts: list[RenderableType] = [
        Text(f"Customer: {', '.join(view.meta.emails)}  (source: {view.meta.source})", style="bold")
    ]
    if view.meta.stale:
        since = f" (as of {view.meta.asOf})" if view.meta.asOf else ""
        parts.append(Text(f"! Loop unreachable: stored data shown{since}", style="red"))
    for issue in view.meta.errors:
        target = issue.email or issue.returnId or ""
        parts.append(Text(f"! {issue.source} {target}: {issue.message}", style="red"))
    for notice in view.meta.notices:
        parts.append(Text(f"note: {notice}", style="yellow"))
    if view.meta.droppedEmails:
        parts.append(Text(f"not looked up: {', '.join(view.meta.droppedEmails)}", style="dim"))
    parts.append(Text(f"\nReturns ({len(view.returns)})", style="bold underline"))
    parts.extend(render_return(r) for r in view.returns)
    if not view.returns:
        parts.append(Text("  no returns in the lookback window", style="dim"))
    parts.append(Text(f"\nOrders ({len(view.orders)})", style="bold underline"))
    parts.extend(render_order(o) for o in view.orders)
    if not view.orders:
        parts.append(Text("  no orders found", style="dim"))
    return Group(*parts)


def render_return(ret: LoopReturn) -> Panel:
    items = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    for column in ("Item", "Reason", "Price", "Refund"):
        items.add_column(column)
    for item in ret.return_.items:
        reason = " / ".join(r for r in (item.parentReturnReason, item.returnReason) if r)
        items.add_row(item.title or item.sku or item.id, reason, item.cost.price, item.cost.total)
    for ex in ret.exchange.items:
        stock = " [red](out of stock)[/red]" if ex.isOutOfStock else ""
        items.add_row(
            f"→ {ex.title or ex.sku}{stock}", f"exchange {ex.orderName}", ex.cost.price, ""
        )
    money = ret.costBreakdown
    totals = Text(
        f"Return {ret.return_.total}  Exchange {ret.exchange.total}  Refund {money.refund}  "
        f"Gift card {money.giftCardAmount}  Upsell {money.upsell}  Fee {money.handlingFee}"
        f"  ({ret.currency})"
    )
    ship = ret.shipping
    shipping = Text(
        f"Label {ship.labelStatus} · {ship.carrier} {ship.trackingNumber}"
        + (f" · updated {ship.labelUpdatedAt}" if ship.labelUpdatedAt else "")
        + (f"\nStatus page {ship.statusPageUrl}" if ship.statusPageUrl else "")
    )
    body: list[RenderableType] = [items, totals, shipping]
    for note in ret.notes:
        body.append(Text(f"✎ {note.createdAt or ''}  {note.content}", style="italic"))
    state = Text(ret.state, style=STATE_STYLES.get(ret.state, ""))
    title = Text.assemble(
        f"Return {ret.id} · order {ret.order.name} · ", state, f" · {ret.outcome}"
    )
    return Panel(Group(*body), title=title, subtitle=f"updated {ret.updatedAt}", title_align="left")


def render_order(order: Order) -> Panel:
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    for column in ("Carrier", "Status", "Tracking"):
        table.add_column(column)
    for shipment in order.shipments:
        table.add_row(shipment.carrierDisplayName, shipment.status, shipment.trackingCode)
    return Panel(
        table, title=f"Order {order.name}", subtitle=order.shipmentUrl or "", title_align="left"
    )
