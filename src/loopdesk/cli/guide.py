"""The guide commands: `guide classify`.

Registered by `cli.main`; the shared CLI helpers are imported when a command runs, so
the two modules load in either order.
"""

from __future__ import annotations

import json
import sys

import typer

guide_app = typer.Typer(help="Self-service guides.", no_args_is_help=True)


def register_guide(app: typer.Typer) -> None:
    app.add_typer(guide_app, name="guide")


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
