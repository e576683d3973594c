"""The agent console: server-rendered pages over loopdesk's own JSON API (`web.routes`)."""

from loopdesk.web.routes import install

__all__ = ["install"]
