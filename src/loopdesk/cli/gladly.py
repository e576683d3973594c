"""The Gladly commands: `gladly export-app`.

Registered by `cli.main`; the shared CLI helpers and the exporter are imported when a
command runs, so the two modules load in either order and `--help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

gladly_app = typer.Typer(help="Gladly: the App Platform app.", no_args_is_help=True)


def register_gladly(app: typer.Typer) -> None:
    app.add_typer(gladly_app, name="gladly")


@gladly_app.command("export-app")
def export_app(
    directory: Annotated[Path, typer.Argument(help="The folder to write the app into.")],
    base_url: Annotated[
        str,
        typer.Option(
            "--base-url", help="Where Gladly reaches loopdesk, e.g. https://desk.example.com."
        ),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Write over a folder that is not empty.")
    ] = False,
) -> None:
    """Write a Gladly App Platform app whose data pulls and actions call loopdesk at
    --base-url (README: "Gladly: the App Platform app"). Its `_test_` data are this
    loopdesk's answers over the seeded sandbox, under the policy file."""
    from loopdesk.cli import main as cli
    from loopdesk.errors import InvalidInput
    from loopdesk.gladly.export import check_base_url, export_app

    try:
        base = check_base_url(base_url)
    except InvalidInput as exc:
        raise cli.fail(exc.message, code=2) from None
    settings = cli.load_settings()
    if base.startswith("http://"):
        cli.err.print(
            "note: Gladly calls the app's URLs from the internet; serve loopdesk over https",
            highlight=False,
        )
    done = cli.run_async(lambda: export_app(directory, base, settings=settings, force=force))
    sys.stdout.write(
        f"wrote the Gladly app to {done.directory} ({len(done.files)} files): data pulls "
        f"{', '.join(done.pulls)}; actions {', '.join(done.actions)}; "
        f"{done.cases} test cases from the sandbox\n"
    )
