"""The `loopdesk` command line.

Output contract: results on standard output, everything else (notices, errors) on
standard error; on error the exit code is non-zero and standard output holds nothing.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from loopdesk.errors import ConfigError, LoopdeskError, LoopValidationError
from loopdesk.settings import Settings

T = TypeVar("T")

app = typer.Typer(
    name="loopdesk",
    help="Loop Returns and Loop Order Tracking for customer support.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
allowlist_app = typer.Typer(help="Loop allowlist entries (return-window exceptions).")
app.add_typer(allowlist_app, name="allowlist")

err = Console(stderr=True, soft_wrap=True)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log upstream calls.")] = False,
) -> None:
    """Loop Returns and Loop Order Tracking for customer support."""
    from loopdesk.logs import configure_logging

    # Commands are quiet by default (results on stdout, problems on stderr); the service
    # logs at LOOPDESK_LOG_LEVEL.
    configure_logging("INFO" if verbose else "ERROR")


SandboxData = Annotated[
    Path | None,
    typer.Option("--sandbox-data", help="Sandbox data file (contract JSON).", dir_okay=False),
]
Host = Annotated[str, typer.Option(help="Interface to listen on.")]
Port = Annotated[int, typer.Option(help="Port to listen on.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    return typer.Exit(code)


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise fail(f"bad settings: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from None


def run_async(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine; typed errors become a message on stderr and exit code 1."""
    try:
        return asyncio.run(factory())  # type: ignore[arg-type]
    except LoopValidationError as exc:
        raise fail("; ".join(e["message"] for e in exc.errors) or exc.message) from None
    except LoopdeskError as exc:
        raise fail(exc.message) from None


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def _upstream(settings: Settings) -> Any:
    from loopdesk.runtime import SANDBOX_NOTICE, Upstream

    try:
        upstream = Upstream.from_settings(settings)
    except ConfigError as exc:
        raise fail(exc.message) from None
    if upstream.sandbox is not None:
        err.print(f"[yellow]{SANDBOX_NOTICE}[/yellow]")
    return upstream


# --- service and sandbox ----------------------------------------------------------


@app.command()
def serve(host: Host = "127.0.0.1", port: Port = 8000, sandbox_data: SandboxData = None) -> None:
    """Run the service (with the built-in sandbox when no Loop token is configured)."""
    import uvicorn

    from loopdesk.api.app import create_app

    settings = load_settings(sandbox_data=sandbox_data)
    from loopdesk.logs import configure_logging

    configure_logging(settings.log_level)
    try:
        api = create_app(settings)
    except ConfigError as exc:
        raise fail(exc.message) from None
    url = f"http://{host}:{port}"
    err.print(f"[bold green]loopdesk[/bold green] on {url}  (API docs: {url}/docs)")
    if settings.api_key is None:
        err.print(f"API key for this run (set LOOPDESK_API_KEY to fix one): {api.state.api_key}")
    if api.state.upstream.sandbox is not None:
        from loopdesk.runtime import SANDBOX_NOTICE

        err.print(f"[yellow]{SANDBOX_NOTICE}[/yellow]")
        err.print(
            f'try: curl -H "Authorization: Bearer $KEY" '
            f'"{url}/v1/customers/lookup?email=primary@email.com&email=secondary@email.com"'
        )
    uvicorn.run(api, host=host, port=port, log_level="warning")


@app.command()
def sandbox(host: Host = "127.0.0.1", port: Port = 8100, sandbox_data: SandboxData = None) -> None:
    """Run the Loop sandbox alone: Loop Returns under /api, Order Tracking at /graphql."""
    import uvicorn

    from loopdesk.sandbox.app import create_sandbox_app

    settings = load_settings(sandbox_data=sandbox_data)
    try:
        api = create_sandbox_app(settings)
    except ConfigError as exc:
        raise fail(exc.message) from None
    err.print(
        f"Loop sandbox on http://{host}:{port} (any non-empty token unless LOOPDESK_SANDBOX_TOKEN)"
    )
    uvicorn.run(api, host=host, port=port, log_level="warning")


# --- lookups ----------------------------------------------------------------------


@app.command()
def lookup(
    emails: Annotated[list[str], typer.Argument(help="The customer's email addresses.")],
    as_json: AsJson = False,
    sandbox_data: SandboxData = None,
) -> None:
    """Show one customer's returns and orders, as the agent sidebar does."""
    from loopdesk.cli.render import render_view
    from loopdesk.customers.profile import profile_emails

    settings = load_settings(sandbox_data=sandbox_data)
    try:  # refuse bad input before any upstream work
        profile_emails(emails, limit=settings.lookup_max_emails)
    except LoopdeskError as exc:
        raise fail(exc.message) from None
    upstream = _upstream(settings)

    async def go() -> Any:
        async with upstream:
            return await upstream.lookup(emails)

    view = run_async(go)
    if as_json:
        emit_json(view.to_json())
    else:
        Console().print(render_view(view))


@app.command()
def normalize(
    kind: Annotated[Literal["returns", "notes", "orders"], typer.Argument(help="Body kind.")],
    file: Annotated[Path | None, typer.Argument(help="Raw body file (default: stdin).")] = None,
    email: Annotated[
        list[str] | None, typer.Option("--email", help="Profile address to keep (repeatable).")
    ] = None,
    return_id: Annotated[str | None, typer.Option("--return-id", help="Notes' return.")] = None,
) -> None:
    """Normalize one raw upstream response body into the sidebar JSON array."""
    from loopdesk.domain.normalize import normalize_notes, normalize_orders, normalize_returns

    try:
        text = file.read_text() if file else sys.stdin.read()
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}") from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(f"{file or 'stdin'} is not JSON: {exc}") from None
    try:
        if kind == "returns":
            result: Any = normalize_returns(body, email or None)
            items = [r.to_json(include_notes=False) for r in result.items]
        elif kind == "notes":
            if not return_id:
                raise fail("normalize notes needs --return-id")
            result = normalize_notes(body, return_id)
            items = [n.model_dump(mode="json") for n in result.items]
        else:
            result = normalize_orders(body)
            items = [o.to_json() for o in result.items]
    except LoopdeskError as exc:
        raise fail(exc.message) from None
    for problem in result.problems:
        err.print(f"[yellow]skipped:[/yellow] {problem.message}", highlight=False)
    emit_json(items)


# --- actions ----------------------------------------------------------------------


@app.command("return-link")
def return_link(
    order_name: Annotated[str, typer.Argument(help='Order name, e.g. "#1086".')],
    zip_code: Annotated[str, typer.Argument(metavar="ZIP", help="ZIP, email or phone.")],
    gift: Annotated[bool, typer.Option(help="A gift return link.")] = False,
    as_json: AsJson = False,
    sandbox_data: SandboxData = None,
) -> None:
    """Create a personalized Loop return link for an order."""
    if not order_name.strip() or not zip_code.strip():
        raise fail("order name and zip are both required")
    upstream = _upstream(load_settings(sandbox_data=sandbox_data))

    async def go() -> Any:
        async with upstream:
            return await upstream.returns.create_return_link(order_name, zip_code, gift=gift)

    result = run_async(go)
    if as_json:
        emit_json({"url": result["url"]})
    else:
        sys.stdout.write(f"{result['url']}\n")


ALLOWLIST_TYPES = ("order", "product", "email", "product_tag")


@allowlist_app.command("add")
def allowlist_add(
    entry_type: Annotated[
        str, typer.Argument(metavar="TYPE", help="order|product|email|product_tag")
    ],
    value: Annotated[str, typer.Argument(help="The order name, product id, email or tag.")],
    sandbox_data: SandboxData = None,
) -> None:
    """Allow a return outside the window: add an allowlist entry."""
    if entry_type not in ALLOWLIST_TYPES:
        raise fail(f"TYPE must be one of {', '.join(ALLOWLIST_TYPES)}", code=2)
    if not value.strip():
        raise fail("VALUE must not be empty", code=2)
    upstream = _upstream(load_settings(sandbox_data=sandbox_data))

    async def go() -> Any:
        async with upstream:
            return await upstream.returns.create_allowlist_entry(entry_type, value)

    entry = run_async(go)
    emit_json({"id": str(entry["id"]), "type": entry["type"], "value": entry["value"]})


@allowlist_app.command("list")
def allowlist_list(page: int = 1, sandbox_data: SandboxData = None) -> None:
    """List allowlist entries (one page)."""
    upstream = _upstream(load_settings(sandbox_data=sandbox_data))

    async def go() -> Any:
        async with upstream:
            return await upstream.returns.list_allowlist(page=page)

    body = run_async(go)
    emit_json(body)


@allowlist_app.command("delete")
def allowlist_delete(entry_id: str, sandbox_data: SandboxData = None) -> None:
    """Delete an allowlist entry."""
    upstream = _upstream(load_settings(sandbox_data=sandbox_data))

    async def go() -> Any:
        async with upstream:
            return await upstream.returns.delete_allowlist_entry(entry_id)

    run_async(go)
    emit_json({"id": entry_id, "deleted": True})
