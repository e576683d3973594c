"""How the console writes times: moments as `<time>` elements that `static/console.js`
shows in the viewer's zone (money is `loopdesk.domain.money`)."""

from __future__ import annotations

from datetime import UTC, datetime

from markupsafe import Markup, escape

from loopdesk.domain.timestamps import parse_iso


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_iso(value).astimezone(UTC)
    except (ValueError, TypeError, OverflowError):
        return None


def when(value: str | None, style: str = "datetime") -> Markup:
    """A `<time>` element: the exact moment in `datetime`, UTC text until the script
    writes it in the viewer's time zone (`style`: `date` or `datetime`)."""
    moment = _moment(value)
    if moment is None:
        return Markup("—") if not value else escape(value)
    text = moment.strftime("%Y-%m-%d" if style == "date" else "%Y-%m-%d %H:%M UTC")
    return Markup('<time datetime="{iso}" data-local="{style}">{text}</time>').format(
        iso=moment.isoformat(), style=style, text=text
    )


def ago(value: str | None, now: datetime | None = None) -> Markup:
    """`3 minutes ago` as a `<time>` the script keeps current."""
    moment = _moment(value)
    if moment is None:
        return Markup("never")
    now = now or datetime.now(UTC)
    return Markup('<time datetime="{iso}" data-ago>{text}</time>').format(
        iso=moment.isoformat(), text=ago_text((now - moment).total_seconds())
    )


def ago_text(seconds: float) -> str:
    minutes = int(max(seconds, 0) // 60)
    if minutes < 1:
        return "less than a minute ago"
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''} ago"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} hour{'s' if hours != 1 else ''} ago"
    return f"{hours // 24} days ago"
