"""The outer layer every upstream request crosses: log, faults, auth, rate limit.

Plain ASGI rather than BaseHTTPMiddleware so a hang stays cancellable, a truncated
body can replace the real one, and latency never blocks the event loop. `/_sandbox/*`
(the control routes) skips all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import math
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loopdesk.sandbox.faults import HANG_SECONDS, Fault, FaultController
from loopdesk.sandbox.ratelimit import RollingLimiter
from loopdesk.sandbox.responses import error_message, json_response, retry_after_header

CONTROL_PREFIX = "/_sandbox"


@dataclass(frozen=True)
class Api:
    name: str
    token_header: str
    unauthorized: dict[str, Any]


LOOP_RETURNS = Api(
    "loop-returns",
    "x-authorization",
    {"error": {"code": "401", "http_code": "GEN-UNAUTHORIZED", "message": "Unauthorized."}},
)
ORDER_TRACKING = Api(
    "order-tracking", "x-wonderment-access-token", {"message": "401: Authentication Failed"}
)


def api_for(path: str) -> Api | None:
    if path.startswith("/api/"):
        return LOOP_RETURNS
    if path == "/graphql" or path.startswith(("/graphql/", "/2022-10/")):
        return ORDER_TRACKING
    return None


class SandboxMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        faults: FaultController,
        limiter: RollingLimiter | None,
        token: str | None,
    ) -> None:
        self.app = app
        self.faults = faults
        self.limiter = limiter
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = _route_path(scope)
        if scope["type"] != "http" or path.startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        query = scope.get("query_string", b"").decode("latin-1")
        self.faults.record(method, path, query)
        headers = Headers(scope=scope)
        api = api_for(path)
        try:
            fault = self.faults.decide(method, path, headers.get("x-sandbox-fault"), query)
        except ValueError as exc:
            await json_response({"message": str(exc)}, 400)(scope, receive, send)
            return
        if fault.latency_ms > 0 and _plain(fault):
            # The answer leaves `latency` after the request arrived, the work done inside
            # that time: concurrent requests overlap as they do on Loop's many servers,
            # instead of queueing their CPU behind one shared sleep.
            send = _held_until(asyncio.get_running_loop().time() + fault.latency_ms / 1000, send)
        elif fault.latency_ms > 0:
            await asyncio.sleep(fault.latency_ms / 1000)
        if fault.hang:
            await _hang(scope, receive, send)
            return
        if fault.after:
            refusal = self._refusal(api, headers)
            if refusal is None:  # the request happens; its answer is lost
                await self.app(scope, receive, _discard)
            failure = _html_page(fault) if fault.html else _fault_response(fault, api)
            await (refusal or failure)(scope, receive, send)
            return
        if fault.html:
            await _html_page(fault)(scope, receive, send)
            return
        if fault.status is not None:
            await _fault_response(fault, api)(scope, receive, send)
            return
        refusal = self._refusal(api, headers)
        if refusal is not None:
            await refusal(scope, receive, send)
        elif fault.malformed:
            await _malformed(self.app, scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def _refusal(self, api: Api | None, headers: Headers) -> Response | None:
        """A 401 or 429 when the token is missing, wrong or over its budget."""
        if api is None:
            return None
        token = headers.get(api.token_header, "").strip()
        if not token or (
            self.token is not None and not hmac.compare_digest(token.encode(), self.token.encode())
        ):
            return json_response(api.unauthorized, 401)
        if self.limiter is None:
            return None
        wait = self.limiter.hit(f"{api.name}:{token}")
        if wait is None:
            return None
        extra: dict[str, str] = {}
        if self.limiter.retry_after:  # Loop documents none: only when asked for
            extra["Retry-After"] = retry_after_header(max(1, math.ceil(wait)))
        return json_response({"message": error_message(429)}, 429, headers=extra)


def _plain(fault: Fault) -> bool:
    """A fault that only delays the real answer."""
    return not (fault.hang or fault.after or fault.html or fault.malformed) and fault.status is None


def _held_until(deadline: float, send: Send) -> Send:
    """`send`, its first message held until `deadline` (the event loop's clock)."""
    held = True

    async def sender(message: Message) -> None:
        nonlocal held
        if held:
            held = False
            wait = deadline - asyncio.get_running_loop().time()
            if wait > 0:
                await asyncio.sleep(wait)
        await send(message)

    return sender


async def _discard(message: Message) -> None:
    """Where a served request's real answer goes under an `after` fault."""


def _route_path(scope: Scope) -> str:
    """The path inside this app, also when it is mounted under a prefix."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _fault_response(fault: Fault, api: Api | None) -> Response:
    status = fault.status or 500
    if status == 401 and api is not None:
        return json_response(api.unauthorized, 401)
    headers = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = retry_after_header(fault.retry_after)
    return json_response({"message": error_message(status)}, status, headers)


def _html_page(fault: Fault) -> Response:
    """The HTML page a proxy in front of Loop serves when the app behind it fails."""
    status = fault.status or 502
    title = f"{status} {error_message(status)}"
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
    headers = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = retry_after_header(fault.retry_after)
    return Response(page, status_code=status, headers=headers, media_type="text/html")


async def _hang(scope: Scope, receive: Receive, send: Send) -> None:
    """Say nothing until the client gives up (or an hour passes, then 504)."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(disconnected(), HANG_SECONDS)
        return
    await json_response({"message": error_message(504)}, 504)(scope, receive, send)


async def _malformed(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve the real answer cut in half: a 200 whose JSON body does not parse."""
    chunks: list[bytes] = []

    async def capture(message: Message) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, capture)
    body = b"".join(chunks)
    cut = body[: max(1, len(body) // 2)]
    try:
        json.loads(cut)
    except ValueError:
        pass
    else:  # half of a short body can still be valid JSON ("12" from "1234")
        cut = b'{"data": ['
    await Response(cut, status_code=200, media_type="application/json")(scope, receive, send)
