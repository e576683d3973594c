"""The guide commands: `guide classify`, `chat`.

Registered by `cli.main`; the shared CLI helpers are imported when a command runs, so
the two modules load in either order.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from loopdesk.guides.reply import CHANNELS

guide_app = typer.Typer(help="Self-service guides.", no_args_is_help=True)


def register_guide(app: typer.Typer) -> None:
    app.add_typer(guide_app, name="guide")
    app.command("chat")(chat)


@guide_app.command("classify")
def classify() -> None:
    """Each JSON line `{"text": ...}` on standard input gets one JSON line
    `{"intent", "confidence", "clarify"}` on standard output, in order.

    Every line is checked before any is classified, so a bad line leaves standard
    output empty."""
    from loopdesk.cli import main as cli
    from loopdesk.guides.classifier import classify as classify_texts

    try:
        lines = sys.stdin.buffer.read().decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise cli.fail("standard input is not UTF-8 text") from None
    texts = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise cli.fail(f"line {number}: not JSON") from None
        if not isinstance(row, dict) or "text" not in row:
            raise cli.fail(f'line {number}: expected an object with "text"')
        if not isinstance(row["text"], str):
            raise cli.fail(f'line {number}: "text" must be a string')
        texts.append(row["text"])
    out = "".join(json.dumps(r.as_json(), ensure_ascii=False) + "\n" for r in classify_texts(texts))
    sys.stdout.write(out)


def chat(
    email: Annotated[
        list[str], typer.Option("--email", help="The customer's email address (repeatable).")
    ],
    channel: Annotated[str, typer.Option(help="chat, email or sms.")] = "chat",
    name: Annotated[str, typer.Option(help="The customer's name.")] = "",
    phone: Annotated[list[str] | None, typer.Option("--phone", help="Phone (repeatable).")] = None,
    conversation: Annotated[
        str, typer.Option(help="Conversation id (default: a new one); reuse it to resume.")
    ] = "",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON answer per line.")] = False,
    sandbox_data: Annotated[
        Path | None,
        typer.Option("--sandbox-data", help="Sandbox data file (contract JSON).", dir_okay=False),
    ] = None,
) -> None:
    """The guide in the terminal: one customer message a line on standard input, the
    guide's answer after each (the same engine as `POST /v1/guide/messages`)."""
    from loopdesk.cli import main as cli
    from loopdesk.customers.profile import profile_emails
    from loopdesk.errors import LoopdeskError
    from loopdesk.guides.context import Profile

    if channel not in CHANNELS:
        raise cli.fail(f"--channel must be one of {', '.join(CHANNELS)}, got {channel!r}", 2)
    settings = cli.load_settings(sandbox_data=sandbox_data)
    try:
        emails = profile_emails(email, limit=settings.lookup_max_emails)
    except LoopdeskError as exc:
        raise cli.fail(exc.message, 2) from None
    profile = Profile(emails=tuple(emails), phones=tuple(phone or ()), name=name)
    conversation_id = conversation or f"cli-{uuid.uuid4()}"
    upstream = cli._upstream(settings)
    interactive = sys.stdin.isatty()
    out = Console(highlight=False, soft_wrap=True)

    async def go() -> None:
        async with upstream:
            services = await cli._services(settings, upstream)
            try:
                while True:
                    if interactive:
                        out.print("[bold]you>[/bold] ", end="")
                    line = await asyncio.to_thread(sys.stdin.readline)
                    if not line:
                        return
                    if not line.strip():
                        continue
                    answer = await services.guide.handle(
                        conversation_id,
                        channel,
                        line.rstrip("\n"),
                        profile,
                    )
                    if as_json:
                        sys.stdout.write(json.dumps(answer.to_json(), ensure_ascii=False) + "\n")
                        sys.stdout.flush()
                    else:
                        _show(out, answer)
            finally:
                await services.aclose()

    cli.run_async(go)


def _show(out: Console, answer: Any) -> None:
    out.print(f"[bold cyan]guide>[/bold cyan] {escape(answer.reply)}")
    if answer.quick_replies:
        out.print("  " + "  ".join(escape(f"[{q}]") for q in answer.quick_replies))
    if answer.handoff:
        h = answer.handoff
        out.print(
            f"[yellow]-- handed over to {escape(h['queue'])} (priority {h['priority']}): "
            f"{escape(h['reason'])}[/yellow]"
        )
        out.print(escape(h["summary"]), style="dim")
