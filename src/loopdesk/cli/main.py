"""The `loopdesk` command line.

Output contract: results on standard output, everything else (notices, errors) on
standard error; on error the exit code is non-zero and standard output holds nothing.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from typer.core import TyperGroup

from loopdesk.cli.exceptions import register_exceptions
from loopdesk.cli.gladly import register_gladly
from loopdesk.cli.guide import register_guide
from loopdesk.cli.routing import register_routing
from loopdesk.errors import ConfigError, InvalidInput, LoopdeskError, LoopValidationError
from loopdesk.settings import Settings

if TYPE_CHECKING:  # the modules behind the commands load when a command runs
    from loopdesk.actions.outcome import ActionOutcome
    from loopdesk.actions.run import ActionRunner
    from loopdesk.runtime import Services, Upstream

T = TypeVar("T")

err = Console(stderr=True, soft_wrap=True)
_verbose = False  # set by the `--verbose` option: show the traceback of a defect


class _Commands(TyperGroup):
    """Every command's last line of defence: an exception nobody turned into a message
    (a defect) still ends as one line on standard error and exit code 1, never a
    stack trace on the terminal (unless `--verbose`)."""

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click Context
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):  # already a message
            raise
        except Exception as exc:
            if _verbose:
                err.print_exception()
            err.print(
                f"[red]error:[/red] unexpected {type(exc).__name__}"
                " (run with --verbose for details)",
                highlight=False,
            )
            raise typer.Exit(1) from None


app = typer.Typer(
    name="loopdesk",
    help="Loop Returns and Loop Order Tracking for customer support.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=_Commands,
)
allowlist_app = typer.Typer(help="Loop allowlist entries (return-window exceptions).")
app.add_typer(allowlist_app, name="allowlist")
keys_app = typer.Typer(help="API keys for the /v1 routes.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
db_app = typer.Typer(help="The database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
webhooks_app = typer.Typer(help="Loop webhook events.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")
register_routing(app)  # route, rules, routing
register_guide(app)  # guide classify
register_exceptions(app)  # exceptions list|show
register_gladly(app)  # gladly export-app


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log upstream calls.")] = False,
) -> None:
    """Loop Returns and Loop Order Tracking for customer support."""
    from loopdesk.logs import configure_logging

    global _verbose
    _verbose = verbose
    # Commands are quiet by default (results on stdout, problems on stderr); the service
    # logs at LOOPDESK_LOG_LEVEL.
    configure_logging("INFO" if verbose else "ERROR")


def _checked_sandbox_data(value: Path | None) -> Path | None:
    """A `--sandbox-data` file is read and checked before the command runs (whatever
    the command): a bad one is a usage error naming the path and the reason."""
    if value is None:
        return None
    from loopdesk.sandbox.data import load_world

    try:
        load_world(value)
    except ConfigError as exc:
        raise fail(exc.message, code=2) from None
    except RecursionError:
        raise fail(f"{value}: sandbox data is nested too deeply", code=2) from None
    return value


SandboxData = Annotated[
    Path | None,
    typer.Option(
        "--sandbox-data",
        help="Sandbox data file (contract JSON).",
        dir_okay=False,
        callback=_checked_sandbox_data,
    ),
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
    except UnicodeDecodeError:
        raise fail("loopdesk.toml is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise fail(f"loopdesk.toml is not valid TOML: {exc}") from None


def run_async(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine; typed errors become a message on stderr and exit code 1."""
    try:
        return asyncio.run(factory())  # type: ignore[arg-type]
    except LoopValidationError as exc:
        raise fail("; ".join(e["message"] for e in exc.errors) or exc.message) from None
    except InvalidInput as exc:  # the caller's words are off: a usage error
        raise fail(exc.message, code=2) from None
    except LoopdeskError as exc:
        raise fail(exc.message) from None


@asynccontextmanager
async def opened_store(settings: Settings) -> AsyncIterator[Any]:
    """The store at LOOPDESK_DATABASE_URL, migrated, closed afterwards."""
    from loopdesk import store as db

    store = await db.Store.open(settings.database_url, migrate=True)
    try:
        yield store
    finally:
        await store.close()


def read_json(file: Path | None) -> Any:
    """The JSON value in FILE (or standard input); a bad file is a message and exit 1."""
    name = str(file) if file else "stdin"
    try:
        data = file.read_bytes() if file else sys.stdin.buffer.read()
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail(f"{name} is not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(f"{name} is not JSON: {exc}") from None
    except RecursionError:
        raise fail(f"{name} is not usable: JSON nested too deeply") from None


async def _services(settings: Settings, upstream: Upstream) -> Services:
    """The same `Services` the HTTP app uses (store at LOOPDESK_DATABASE_URL); a
    database that cannot be opened is a message naming it (without its password)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from loopdesk.runtime import Services

    try:
        return await Services.open(settings, upstream=upstream)
    except (OSError, SQLAlchemyError) as exc:
        try:
            where = make_url(settings.database_url).render_as_string(hide_password=True)
        except SQLAlchemyError:
            where = "LOOPDESK_DATABASE_URL"
        raise fail(f"cannot open the database {where}: {type(exc).__name__}") from None


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def _upstream(settings: Settings) -> Any:
    from loopdesk.runtime import SANDBOX_NOTICE, Upstream

    try:
        upstream = Upstream.from_settings(settings)
    except ConfigError as exc:
        raise fail(exc.message) from None
    except RecursionError:
        raise fail(f"{settings.sandbox_data}: sandbox data is nested too deeply") from None
    if upstream.sandbox is not None:
        err.print(f"[yellow]{SANDBOX_NOTICE}[/yellow]")
    return upstream


# --- service and sandbox ----------------------------------------------------------


@app.command()
def serve(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    sandbox_data: SandboxData = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run the service (with the built-in sandbox when no Loop token is configured)."""
    import os
    import secrets

    import uvicorn
    from rich.markup import escape

    from loopdesk import store as db
    from loopdesk.logs import configure_logging, logging_config, secret_values
    from loopdesk.loop.limits import serve_workers_env
    from loopdesk.routing.service import RoutingConfig
    from loopdesk.runtime import SANDBOX_NOTICE
    from loopdesk.settings import WEBHOOK_SECRET_SETTING

    if sandbox_data is not None:  # workers read their settings from the environment
        os.environ["LOOPDESK_SANDBOX_DATA"] = str(sandbox_data)
    settings = load_settings()
    configure_logging(settings.log_level, secrets=secret_values(settings))
    try:  # N workers share Loop's per-key budget, never multiply it
        os.environ.update(serve_workers_env(settings, workers))
    except ConfigError as exc:
        raise fail(exc.message) from None
    if workers > 1 and settings.console_secret is None:  # one console session for all workers
        os.environ["LOOPDESK_CONSOLE_SECRET"] = secrets.token_urlsafe(32)
    if settings.uses_sandbox and settings.sandbox_data:
        from loopdesk.sandbox.data import load_world

        try:  # a bad data file fails now, with its path and reason
            load_world(settings.sandbox_data)
        except ConfigError as exc:
            raise fail(exc.message) from None
    try:  # a bad rules or policy file fails now, with the rule's name and position
        RoutingConfig.from_settings(settings)
    except ConfigError as exc:
        raise fail(escape(exc.message)) from None
    run_async(lambda: db.upgrade(settings.database_url))  # migrate once, before workers
    url = f"http://{host}:{port}"
    err.print(f"[bold green]loopdesk[/bold green] on {url}  (API docs: {url}/docs)")
    # Never a key minted here: standard error is the service's log, and a key printed
    # there would sit in the log file (`make run` creates one, on the terminal only).
    if settings.api_key is None and not run_async(lambda: _has_api_key(settings)):
        err.print("[yellow]no API key yet: create one with `loopdesk keys create NAME`[/yellow]")
    if settings.uses_sandbox:
        err.print(f"[yellow]{SANDBOX_NOTICE}[/yellow]")
    if not settings.webhook_secrets:
        err.print(
            f"[yellow]{WEBHOOK_SECRET_SETTING} is not set: every Loop webhook is refused"
            " with 401[/yellow]"
        )
    uvicorn.run(
        "loopdesk.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        # Our handler in every worker: uvicorn's lines are redacted like ours.
        log_config=logging_config(settings.log_level),
    )


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
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Fetch from Loop now, whatever the store holds.")
    ] = False,
    sandbox_data: SandboxData = None,
) -> None:
    """Show one customer's returns and orders, as the agent sidebar does.

    The same lookup as `GET /v1/customers/lookup`: served from the store
    (LOOPDESK_DATABASE_URL) when fetched recently enough, from Loop otherwise.
    """
    from loopdesk.cli.render import render_view
    from loopdesk.customers.profile import usable_emails

    settings = load_settings(sandbox_data=sandbox_data)
    try:  # refuse bad input before any upstream work
        usable_emails(emails)
    except InvalidInput as exc:
        raise fail(exc.message, code=2) from None
    upstream = _upstream(settings)

    async def go() -> Any:
        async with await _services(settings, upstream) as services:
            return await services.customers.lookup(emails, fresh=fresh)

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

    body = read_json(file)
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
    except RecursionError:
        raise fail(f"{file or 'stdin'}: the body is nested too deeply") from None
    for problem in result.problems:  # a bad field is shown blank; a bad record is left out
        label = "shown blank" if problem.details.get("field") else "skipped"
        err.print(f"[yellow]{label}:[/yellow] {problem.message}", highlight=False)
    emit_json(items)


# --- actions ----------------------------------------------------------------------


CLI_KEY_NAME = "cli"  # how the audit log names actions taken from the command line


def run_action(
    settings: Settings, act: Callable[[ActionRunner], Awaitable[ActionOutcome]]
) -> dict[str, Any]:
    """Run an action the way the service does (audited in the store); its answer, or
    Loop's refusal on stderr with exit 1."""
    upstream = _upstream(settings)

    async def go() -> ActionOutcome:
        async with await _services(settings, upstream) as services:
            return await act(services.actions)

    outcome = run_async(go)
    if not outcome.ok:
        error = outcome.body.get("error", {})
        problems = error.get("details", {}).get("errors") or []
        raise fail("; ".join(p["message"] for p in problems) or error.get("message", "failed"))
    return outcome.body


@app.command("return-link")
def return_link(
    order_name: Annotated[str, typer.Argument(help='Order name, e.g. "#1086".')],
    zip_code: Annotated[str, typer.Argument(metavar="ZIP", help="ZIP, email or phone.")],
    gift: Annotated[bool, typer.Option(help="A gift return link.")] = False,
    as_json: AsJson = False,
    sandbox_data: SandboxData = None,
) -> None:
    """Create a personalized Loop return link for an order."""
    result = run_action(
        load_settings(sandbox_data=sandbox_data),
        lambda runner: runner.return_link(order_name, zip_code, gift=gift, key_name=CLI_KEY_NAME),
    )
    if as_json:
        emit_json(result)
    else:
        sys.stdout.write(f"{result['url']}\n")


@allowlist_app.command("add")
def allowlist_add(
    entry_type: Annotated[
        str, typer.Argument(metavar="TYPE", help="order|product|email|product_tag")
    ],
    value: Annotated[str, typer.Argument(help="The order name, product id, email or tag.")],
    sandbox_data: SandboxData = None,
) -> None:
    """Allow a return outside the window: add an allowlist entry."""
    emit_json(
        run_action(
            load_settings(sandbox_data=sandbox_data),
            lambda runner: runner.allowlist_add(entry_type, value, key_name=CLI_KEY_NAME),
        )
    )


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
    from loopdesk.api.inputs import loop_id

    try:
        entry_id = loop_id(entry_id, field="ENTRY_ID")
    except InvalidInput as exc:
        raise fail(exc.message, code=2) from None
    emit_json(
        run_action(
            load_settings(sandbox_data=sandbox_data),
            lambda runner: runner.allowlist_delete(entry_id, key_name=CLI_KEY_NAME),
        )
    )


# --- storage, keys, webhooks --------------------------------------------------------


async def _create_key(settings: Settings, name: str) -> str:
    from loopdesk import store as db

    async with opened_store(settings) as store, store.session() as session:
        return await db.create_api_key(session, name)


async def _has_api_key(settings: Settings) -> bool:
    from loopdesk import store as db

    async with opened_store(settings) as store, store.session() as session:
        return any(row.active for row in await db.list_api_keys(session))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database (LOOPDESK_DATABASE_URL) to the latest schema."""
    from loopdesk import store as db

    settings = load_settings()
    run_async(lambda: db.upgrade(settings.database_url))
    err.print("database is up to date")


@keys_app.command("create")
def keys_create(name: str) -> None:
    """Create an API key; prints the key alone (it is stored only hashed)."""
    if not name.strip():
        raise fail("NAME must not be empty", code=2)
    key = run_async(lambda: _create_key(load_settings(), name.strip()))
    sys.stdout.write(key + "\n")


@keys_app.command("revoke")
def keys_revoke(name: str) -> None:
    """Revoke the API key with that name."""
    from loopdesk import store as db

    settings = load_settings()

    async def go() -> bool:
        async with opened_store(settings) as store, store.session() as session:
            return await db.revoke_api_key(session, name)

    if not run_async(go):
        raise fail(f"no active API key named {name!r}")
    err.print(f"revoked {name}")


@webhooks_app.command("replay")
def webhooks_replay(limit: int = 100) -> None:
    """Apply the stored webhook events not applied yet (`received`) or `failed`."""
    from loopdesk.customers.webhooks import ReturnReads, replay

    settings = load_settings()

    async def go() -> dict[str, int]:
        async with _upstream(settings) as upstream, opened_store(settings) as store:
            reads = ReturnReads(upstream.returns, store)
            return await replay(store, reads=reads, limit=limit)

    emit_json(run_async(go))


def _webhooks_api(settings: Settings) -> tuple[Any, Any]:
    """(upstream, its Loop webhooks API); a note when the subscriptions die with us."""
    from loopdesk.loop.webhooks_api import LoopWebhooksApi

    upstream = _upstream(settings)
    if upstream.sandbox is not None:
        err.print(
            "[yellow]the in-process sandbox forgets its subscriptions when this command ends;"
            " point LOOPDESK_LOOP_BASE_URL and LOOPDESK_LOOP_API_TOKEN at a running"
            " `loopdesk sandbox` to keep them[/yellow]"
        )
    return upstream, LoopWebhooksApi.of(upstream.returns)


def _webhook_url(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise fail(f"--url must be an http(s) URL, got {url!r}", code=2)
    return url.strip()


WebhookUrl = Annotated[
    str | None,
    typer.Option("--url", help="The URL Loop sends to, e.g. https://desk.example/webhooks/loop."),
]


@webhooks_app.command("subscribe")
def webhooks_subscribe(
    url: Annotated[str, typer.Option("--url", help="Where Loop sends the webhooks.")],
) -> None:
    """Subscribe URL to every topic and trigger loopdesk applies (safe to run again)."""
    target = _webhook_url(url)
    upstream, api = _webhooks_api(load_settings())

    async def go() -> Any:
        async with upstream:
            return await api.subscribe(target)

    results = run_async(go)
    rejected = [r for r in results if r.outcome == "rejected"]
    if rejected:
        done = ", ".join(f"{r.trigger} {r.outcome}" for r in results if r not in rejected)
        problems = "; ".join(f"{r.trigger}: {r.message}" for r in rejected)
        raise fail(f"Loop refused {problems}" + (f" (done: {done})" if done else ""))
    emit_json([r.to_json() for r in results])


@webhooks_app.command("list")
def webhooks_list(url: WebhookUrl = None) -> None:
    """Show Loop's webhook subscriptions (those sending to URL, with --url)."""
    upstream, api = _webhooks_api(load_settings())

    async def go() -> Any:
        async with upstream:
            return await api.subscriptions()

    items = run_async(go)
    emit_json([w for w in items if url is None or w.get("url") == url.strip()])


@webhooks_app.command("unsubscribe")
def webhooks_unsubscribe(
    webhook_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="One subscription's id.")
    ] = None,
    url: WebhookUrl = None,
) -> None:
    """Remove one subscription by ID, or every subscription sending to --url."""
    from loopdesk.errors import LoopNotFound

    if (webhook_id is None) == (url is None):
        raise fail("give either a subscription ID or --url URL", code=2)
    upstream, api = _webhooks_api(load_settings())

    async def go() -> list[str]:
        async with upstream:
            if webhook_id is not None:
                try:
                    await api.delete(webhook_id)
                except LoopNotFound:
                    raise fail(f"no webhook subscription with id {webhook_id!r}") from None
                return [webhook_id]
            target = (url or "").strip()
            ids = [str(w.get("id")) for w in await api.subscriptions() if w.get("url") == target]
            if not ids:  # already as asked: safe to run twice, like `subscribe`
                err.print(f"no webhook subscriptions send to {target}: nothing to remove")
            for each in ids:
                await api.delete(each)
            return ids

    emit_json({"removed": run_async(go)})


@app.command()
def sync(
    since: Annotated[str, typer.Option(help="Start date, YYYY-MM-DD (UTC).")],
    page_size: Annotated[int, typer.Option(min=1, max=750)] = 250,
    sandbox_data: SandboxData = None,
) -> None:
    """Backfill the store from Loop's returns list; resumable after an interruption."""
    from datetime import UTC, datetime

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from loopdesk.customers.backfill import backfill

    try:
        start = datetime.fromisoformat(since).replace(tzinfo=UTC)
    except ValueError:
        raise fail(f"--since must be a date like 2026-01-31, got {since!r}", code=2) from None
    settings = load_settings(sandbox_data=sandbox_data)
    upstream = _upstream(settings)
    progress = Progress(
        TextColumn("[bold]returns sync"),
        BarColumn(),
        TextColumn("{task.fields[count]} returns"),
        TimeElapsedColumn(),
        console=err,
    )

    async def go() -> Any:
        task = progress.add_task("sync", total=1.0, count=0)
        total = 0

        def on_page(window_end: datetime, until: datetime, n: int) -> None:
            nonlocal total
            total += n
            span = (until - start).total_seconds() or 1
            done = min(1.0, (window_end - start).total_seconds() / span)
            progress.update(task, completed=done, count=total)

        async with opened_store(settings) as store, upstream:
            with progress:
                return await backfill(
                    store, upstream.returns, since=start, page_size=page_size, on_page=on_page
                )

    result = run_async(go)
    emit_json(
        {
            "pages": result.pages,
            "returns": result.returns,
            "skipped": result.skipped,
            "resumed": result.resumed,
        }
    )
