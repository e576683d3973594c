"""The agent console: server-rendered pages over loopdesk's own JSON API (`web.routes`),
and the draft-return pages (`web.draft_pages`)."""

from fastapi import FastAPI

from loopdesk.web import draft_pages, routes


def install(app: FastAPI, secret: str | None) -> None:
    """Mount the console at `/` (its other paths under `/console/` and `/drafts/`)."""
    routes.install(app, secret)
    app.include_router(draft_pages.router)


__all__ = ["install"]
