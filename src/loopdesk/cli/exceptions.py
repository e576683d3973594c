"""The exceptions ledger commands: `exceptions list|show`.

Registered by `cli.main`; the shared CLI helpers, the store and rich's tables are
imported when a command runs, so the two modules load in either order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from loopdesk.store.exceptions import ExceptionRow

exceptions_app = typer.Typer(
    help="The return-window exceptions ledger: every decision, explained.",
    no_args_is_help=True,
)


def register_exceptions(app: typer.Typer) -> None:
    app.add_typer(exceptions_app, name="exceptions")


@exceptions_app.command("list")
def exceptions_list(
    email: Annotated[str | None, typer.Option(help="Only this customer's address.")] = None,
    order: Annotated[str | None, typer.Option(help="Only this order (# optional).")] = None,
    outcome: Annotated[
        str | None, typer.Option(help="granted, pending, failed, refused, unknown ...")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The ledger's decisions, newest first."""
    from loopdesk import store as db
    from loopdesk.cli import main as cli
    from loopdesk.customers.profile import email_problem
    from loopdesk.domain.shipments import order_key

    if email is not None and (problem := email_problem(email.strip())) is not None:
        raise cli.fail(f"--email: {problem}", 2)
    if order is not None and not (order_key(order) and order.isprintable()):
        raise cli.fail("--order takes an order name such as #1086", 2)
    if outcome is not None and outcome not in db.LEDGER_OUTCOMES:
        raise cli.fail(f"--outcome is one of {', '.join(db.LEDGER_OUTCOMES)}", 2)
    settings = cli.load_settings()

    async def go() -> list[ExceptionRow]:
        async with cli.opened_store(settings) as store, store.reader() as session:
            return await db.list_exceptions(
                session,
                email=email,
                order_key=order_key(order) if order is not None else None,
                outcome=outcome,
                limit=limit,
            )

    rows = cli.run_async(go)
    if as_json:
        cli.emit_json([row.to_json() for row in rows])
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="Return-window exceptions", title_justify="left")
    for column in ("id", "decided", "order", "customer", "outcome", "failed", "allowlist"):
        table.add_column(column, overflow="fold")
    for row in rows:
        failed = [c["name"] for c in row.criteria if not c.get("held")]
        table.add_row(
            str(row.id),
            row.decided_at.strftime("%Y-%m-%d %H:%M"),
            escape(row.order_name),
            escape(", ".join(row.customer_emails)),
            row.outcome,
            ", ".join(failed) or "-",
            escape(row.allowlist_id or "-"),
        )
    if not rows:
        cli.err.print("no exceptions recorded" + (" for these filters" if email or order else ""))
        return
    Console().print(table)


@exceptions_app.command("show")
def exceptions_show(
    entry_id: Annotated[str, typer.Argument(metavar="ID", help="The ledger entry's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One decision: the customer, the order, every criterion and what came of it."""
    from loopdesk import store as db
    from loopdesk.cli import main as cli

    if not entry_id.isdigit() or not 0 < int(entry_id) <= db.MAX_ROW_ID:
        raise cli.fail(f"ID is a ledger entry's number, got {entry_id[:40]!r}", 2)
    settings = cli.load_settings()

    async def go() -> ExceptionRow | None:
        async with cli.opened_store(settings) as store, store.reader() as session:
            return await db.get_exception(session, int(entry_id))

    row = cli.run_async(go)
    if row is None:
        raise cli.fail(f"no exceptions ledger entry {entry_id}")
    if as_json:
        cli.emit_json(row.to_json())
        return
    _show(row)


def _show(row: ExceptionRow) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    out = Console()
    out.print(
        f"[bold]exception {row.id}[/bold]  order {escape(row.order_name)}  "
        f"[bold]{row.outcome}[/bold]",
        highlight=False,
    )
    facts: list[tuple[str, Any]] = [
        ("decided", row.decided_at.isoformat()),
        ("customer", ", ".join(row.customer_emails)),
        ("vip", "yes" if row.vip else "no"),
        ("delivered", row.delivered_at.isoformat() if row.delivered_at else "unknown"),
        ("window closed", row.details.get("windowClosedOn") or "-"),
        ("grace ends", row.details.get("graceEndsOn") or "-"),
        ("allowlist entry", row.allowlist_id or "-"),
        ("conversation", row.conversation_id or "-"),
        ("by", row.key_name),
    ]
    for label, value in facts:
        out.print(f"{label:>16}: {escape(str(value))}", highlight=False)
    table = Table(title="criteria, in order", title_justify="left")
    for column in ("criterion", "held", "detail"):
        table.add_column(column, overflow="fold")
    for criterion in row.criteria:
        held = bool(criterion.get("held"))
        table.add_row(
            str(criterion.get("name", "")),
            "yes" if held else "no",
            escape(str(criterion.get("detail", ""))),
            style="" if held else "red",
        )
    out.print(table)
    if row.reason:
        out.print(f"reason: {escape(row.reason)}", highlight=False)
    error = row.details.get("upstreamError")
    if isinstance(error, dict):
        out.print(f"[red]Loop: {escape(str(error.get('message', '')))}[/red]", highlight=False)
