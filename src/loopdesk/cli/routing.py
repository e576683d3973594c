"""The routing commands: `route`, `rules check|facts`, `routing report|scan`.

The shared CLI helpers live in `cli.main`, which registers these commands; they are
imported when a command runs, so the two modules load in either order.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from loopdesk.routing.service import Routed

WORD = re.compile(r"^[a-z0-9_-]{0,32}$")

rules_app = typer.Typer(help="Routing rules files.", no_args_is_help=True)
routing_app = typer.Typer(help="Routing decisions.", no_args_is_help=True)


def register_routing(app: typer.Typer) -> None:
    app.command("route")(route)
    app.add_typer(rules_app, name="rules")
    app.add_typer(routing_app, name="routing")


def route(
    emails: Annotated[list[str], typer.Argument(help="The customer's email addresses.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    explain: Annotated[bool, typer.Option("--explain", help="Show every rule's result.")] = False,
    channel: Annotated[str, typer.Option(help="chat, email, sms ...")] = "",
    intent: Annotated[str, typer.Option(help="The message's intent, when known.")] = "",
    sandbox_data: Annotated[
        Path | None,
        typer.Option("--sandbox-data", help="Sandbox data file (contract JSON).", dir_okay=False),
    ] = None,
) -> None:
    """The routing decision for a customer now: queue, priority, rule, tags and facts."""
    from loopdesk.cli import main as cli
    from loopdesk.customers.lookup import LookupOptions
    from loopdesk.customers.profile import profile_emails
    from loopdesk.customers.service import CustomerService
    from loopdesk.errors import ConfigError, LoopdeskError
    from loopdesk.routing.reroute import Rerouter
    from loopdesk.routing.service import RoutingConfig, route_customer

    settings = cli.load_settings(sandbox_data=sandbox_data)
    channel, intent = channel.strip().lower(), intent.strip().lower()
    for option, value in (("--channel", channel), ("--intent", intent)):
        if not WORD.match(value):
            raise cli.fail(f"{option} takes a word (letters, digits, _ or -), got {value!r}", 2)
    try:  # refuse bad input and a bad rules file before any upstream work
        profile_emails(emails, limit=settings.lookup_max_emails)
        config = RoutingConfig.from_settings(settings)
    except ConfigError as exc:
        raise cli.fail(escape(exc.message)) from None
    except LoopdeskError as exc:
        raise cli.fail(escape(exc.message), 2) from None
    upstream = cli._upstream(settings)

    async def go() -> Routed:
        async with cli.opened_store(settings) as store, upstream:
            # A change this fetch reveals is written to the outbox; `serve` sends it.
            rerouter = Rerouter(config, store, LookupOptions.from_settings(settings))
            customers = CustomerService(
                store,
                upstream.returns,
                upstream.tracking,
                settings,
                source="sandbox" if upstream.sandbox is not None else "loop",
                on_refresh=rerouter.refreshed,
            )
            try:
                return await route_customer(
                    config, customers, store, emails, channel=channel, intent=intent
                )
            finally:
                await customers.aclose()

    routed = cli.run_async(go)
    if as_json:
        cli.emit_json(routed.to_json())
        if explain:
            cli.err.print(explain_table(routed))
        return
    out = Console()
    outcome = routed.decision.outcome
    tags = f"  tags: {', '.join(outcome.tags)}" if outcome.tags else ""
    out.print(
        f"[bold]{outcome.queue}[/bold]  priority {outcome.priority}  "
        f"rule {routed.decision.rule}{tags}",
        highlight=False,
    )
    if outcome.note:
        out.print(outcome.note, style="italic", highlight=False)
    if routed.stale:
        cli.err.print("[yellow]Loop did not answer: facts from stored data[/yellow]")
    if explain:
        out.print(explain_table(routed))


def explain_table(routed: Routed) -> Table:
    """The trace as a person reads it: each rule in order, what it read, what it gave."""
    table = Table(title=f"Routing {', '.join(routed.emails)}", title_justify="left")
    for column in ("#", "rule", "condition", "facts read", "result"):
        table.add_column(column, overflow="fold")
    styles = {"matched": "bold green", "no match": "", "not evaluated": "dim", "error": "red"}
    for step in routed.decision.trace:
        reads = "\n".join(f"{k} = {_show(v)}" for k, v in step.reads.items()) or "-"
        result = step.result + (
            " (continues)" if step.continues and step.result == "matched" else ""
        )
        if step.error:
            result += f": {step.error}"
        table.add_row(
            str(step.position), step.rule, step.condition, reads, result, style=styles[step.result]
        )
    outcome = routed.decision.outcome
    table.caption = (
        f"-> {outcome.queue} (priority {outcome.priority}) by {routed.decision.rule}"
        + (f"; tags {', '.join(outcome.tags)}" if outcome.tags else "")
    )
    return table


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


@rules_app.command("check")
def rules_check(
    file: Annotated[
        Path | None,
        typer.Argument(help="Rules file (default: LOOPDESK_RULES_FILE or the built-in rules)."),
    ] = None,
) -> None:
    """Check a routing rules file: exit 0 when valid; else each problem on stderr."""
    from loopdesk.cli import main as cli
    from loopdesk.routing.rules import RulesError, load_rules

    path = file if file is not None else cli.load_settings().rules_file
    try:
        rules = load_rules(path)
    except RulesError as exc:
        for problem in exc.problems:
            cli.err.print(f"[red]error:[/red] {escape(str(problem))}", highlight=False)
        raise typer.Exit(1) from None
    for warning in rules.warnings:
        cli.err.print(f"[yellow]warning:[/yellow] {escape(str(warning))}", highlight=False)
    sys.stdout.write(f"ok: {rules.source}: {len(rules.rules)} rules\n")


@rules_app.command("facts")
def rules_facts() -> None:
    """The facts a condition can read, with their definitions (a Markdown table)."""
    from loopdesk.domain.facts import fact_table_markdown

    sys.stdout.write(fact_table_markdown())


@routing_app.command("report")
def routing_report(
    since: Annotated[str, typer.Option(help="From this date or time (UTC), e.g. 2026-01-31.")],
    until: Annotated[str | None, typer.Option(help="Up to this date or time (UTC).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Count the recorded decisions by queue and rule."""
    from loopdesk import store as db
    from loopdesk.cli import main as cli

    start = _moment(since, "--since")
    end = _moment(until, "--until") if until else None
    settings = cli.load_settings()

    async def go() -> list[tuple[str, str, int]]:
        async with cli.opened_store(settings) as store, store.reader() as session:
            return await db.decision_counts(session, since=start, until=end)

    counts = cli.run_async(go)
    by_queue: dict[str, int] = {}
    by_rule: dict[str, int] = {}
    for queue, rule, n in counts:
        by_queue[queue] = by_queue.get(queue, 0) + n
        by_rule[rule] = by_rule.get(rule, 0) + n
    report: dict[str, Any] = {
        "since": start.isoformat(),
        "until": end.isoformat() if end else None,
        "total": sum(n for _, _, n in counts),
        "byQueue": dict(sorted(by_queue.items(), key=lambda kv: (-kv[1], kv[0]))),
        "byRule": dict(sorted(by_rule.items(), key=lambda kv: (-kv[1], kv[0]))),
        "byQueueAndRule": [{"queue": q, "rule": r, "count": n} for q, r, n in counts],
    }
    if as_json:
        cli.emit_json(report)
        return
    table = Table(title=f"Routing decisions since {start.isoformat()}", title_justify="left")
    for column in ("queue", "rule", "decisions"):
        table.add_column(column)
    for queue, rule, n in counts:
        table.add_row(queue, rule, str(n))
    table.caption = f"{report['total']} decisions; " + ", ".join(
        f"{q} {n}" for q, n in report["byQueue"].items()
    )
    Console().print(table)


@routing_app.command("scan")
def routing_scan(
    at: Annotated[
        str | None, typer.Option(help="Compute the facts at this time (UTC), not now.")
    ] = None,
    send: Annotated[
        bool, typer.Option(help="Send the events due after the scan (once each).")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Re-route, from the store alone, every customer with a last outcome or an open
    return; write a `routing.changed` event for each outcome that changed."""
    from loopdesk.cli import main as cli
    from loopdesk.customers.lookup import LookupOptions
    from loopdesk.routing.outbox import Delivered, Sender
    from loopdesk.routing.reroute import Rerouter
    from loopdesk.routing.scan import Scanned, scan

    moment = _moment(at, "--at") if at else datetime.now(UTC)
    settings = cli.load_settings()
    config = _routing_config(settings)

    async def go() -> tuple[Scanned, Delivered | None]:
        async with cli.opened_store(settings) as store:
            rerouter = Rerouter(config, store, LookupOptions.from_settings(settings))
            scanned = await scan(rerouter, now=moment)
            if not send or not config.events.urls:
                return scanned, None
            sender = Sender(store, config.events)
            try:
                return scanned, await sender.deliver_due()
            finally:
                await sender.aclose()

    scanned, delivered = cli.run_async(go)
    report: dict[str, Any] = {
        "at": moment.isoformat(),
        "customers": scanned.customers,
        "changed": len(scanned.changes),
        "events": [change.to_json() for change in scanned.changes],
        "sent": delivered.sent if delivered else 0,
        "failed": delivered.failed if delivered else 0,
    }
    if as_json:
        cli.emit_json(report)
        return
    out = Console()
    out.print(
        f"scanned {scanned.customers} customers at {moment.isoformat()}: "
        f"{len(scanned.changes)} outcome changes",
        highlight=False,
    )
    for change in scanned.changes:
        out.print(
            f"  {change.old.queue} -> {change.new.queue} by {change.new.rule} "
            f"({len(change.emails)} addresses, event {change.id})",
            highlight=False,
        )
    if not config.events.urls:
        cli.err.print("[yellow]LOOPDESK_ROUTING_WEBHOOK_URLS is not set: no events sent[/yellow]")
    elif delivered is not None:
        out.print(f"sent {delivered.sent}, failed {delivered.failed} (retried later)")


def _routing_config(settings: Any) -> Any:
    from loopdesk.cli import main as cli
    from loopdesk.errors import ConfigError
    from loopdesk.routing.service import RoutingConfig

    try:
        return RoutingConfig.from_settings(settings)
    except ConfigError as exc:
        raise cli.fail(escape(exc.message)) from None


def _moment(text: str, option: str) -> datetime:
    from loopdesk.cli import main as cli

    try:
        moment = datetime.fromisoformat(text.strip())
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        message = f"{option} must be a date or time like 2026-01-31, got {text!r}"
        raise cli.fail(message, 2) from None
