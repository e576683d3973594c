"""Bearer keys for the /v1 routes, compared in constant time."""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request

from loopdesk.errors import LoopdeskError


class Unauthorized(LoopdeskError):
    code = "unauthorized"
    http_status = 401


def new_api_key() -> str:
    return f"ld_{secrets.token_urlsafe(32)}"


def require_api_key(request: Request) -> None:
    expected: str = request.app.state.api_key
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise Unauthorized("missing bearer API key")
    if not hmac.compare_digest(presented.strip().encode(), expected.encode()):
        raise Unauthorized("invalid API key")
