"""The console's session: one encrypted, HttpOnly, SameSite=Strict cookie.

The cookie holds the signed-in API key (so each page can call the JSON API as that
key), the key's name and a per-session CSRF token, encrypted and authenticated with
Fernet (AES-CBC + HMAC-SHA256, from `cryptography`) under `LOOPDESK_CONSOLE_SECRET`: the
browser never sees the key in clear, and no URL or script storage ever holds it. A
visitor who has not signed in gets a session too (no key, a CSRF token), so the
sign-in form itself is protected against cross-site posts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "loopdesk_console"
# A session lasts a working day at most, however long the browser stays open.
MAX_AGE_S = 12 * 3600
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Session:
    csrf: str
    key: str | None = None
    key_name: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.key is not None

    @classmethod
    def new(cls) -> Session:
        return cls(csrf=secrets.token_urlsafe(32))

    def signed_in_as(self, key: str, key_name: str) -> Session:
        # A fresh CSRF token with every sign-in: a token seen before it is worth nothing.
        return replace(self, key=key, key_name=key_name, csrf=secrets.token_urlsafe(32))


class SessionCodec:
    """Seals and opens the cookie; anything tampered, foreign or expired opens as None."""

    def __init__(self, secret: str | None) -> None:
        material = secret.encode() if secret else secrets.token_bytes(32)
        digest = hashlib.sha256(b"loopdesk console session\x00" + material).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, session: Session) -> str:
        body = {"c": session.csrf, "k": session.key, "n": session.key_name}
        return self._fernet.encrypt(json.dumps(body).encode()).decode()

    def open(self, token: str) -> Session | None:
        try:
            body = json.loads(self._fernet.decrypt(token.encode(), ttl=MAX_AGE_S))
            session = Session(csrf=str(body["c"]), key=body.get("k"), key_name=body.get("n"))
        except (InvalidToken, ValueError, KeyError, TypeError):
            return None
        if session.key is not None and not session.key_name:
            return None
        return session

    def read(self, request: Request) -> Session | None:
        token = request.cookies.get(COOKIE)
        return self.open(token) if token else None

    def write(self, response: Response, request: Request, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            self.seal(session),
            # No max-age: the cookie ends with the browser session (and the token's TTL).
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )

    @staticmethod
    def clear(response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


def csrf_ok(session: Session, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf.encode(), str(presented).encode())


def cross_site(request: Request) -> bool:
    """A request a browser says came from another site (Fetch Metadata or Origin)."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    # The host only: behind a TLS proxy the scheme seen here may differ from the browser's.
    return origin == "null" or urlsplit(origin).netloc != request.headers.get("host", "")
