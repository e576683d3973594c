"""The mounted sandbox's control routes need a loopdesk API key.

`serve` without a Loop token mounts the sandbox at `/sandbox`. Its `/_sandbox/*` routes
inject faults and choose where signed webhooks go, and its webhooks API subscribes
URLs to them, so on a reachable service they would let anyone redirect those webhooks
or break the demo. Mounted, they take the same bearer keys as `/v1`; the standalone
`loopdesk sandbox` (a test tool on its own port) keeps them open.
"""

from __future__ import annotations

import re

from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from loopdesk.api.auth import require_api_key
from loopdesk.api.errors import error_response
from loopdesk.errors import Unauthorized
from loopdesk.sandbox.middleware import CONTROL_PREFIX

# Loop's webhooks API inside the sandbox, under any of its version prefixes.
_SUBSCRIPTIONS = re.compile(r"^/api/[^/]+/webhooks(/|$)")


def guarded(path: str) -> bool:
    """Paths (inside the sandbox) that need a loopdesk API key when mounted."""
    return path.startswith(CONTROL_PREFIX + "/") or bool(_SUBSCRIPTIONS.match(path))


class SandboxGuard:
    """ASGI wrapper of the mounted sandbox: 401 on guarded paths without a valid key."""

    def __init__(self, app: ASGIApp, *, service: FastAPI) -> None:
        self.app = app
        self.service = service  # where the keys are checked (its store and key cache)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and guarded(_inner_path(scope)):
            request = Request({**scope, "app": self.service})
            try:
                await require_api_key(request)
            except Unauthorized as exc:
                response = error_response(exc.http_status, exc.code, exc.message, exc.details)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _inner_path(scope: Scope) -> str:
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path
