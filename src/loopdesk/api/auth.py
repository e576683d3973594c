"""Bearer API keys for the /v1 routes: stored hashed, compared in constant time.

`LOOPDESK_API_KEY`, when set, is accepted too (named `env`), for deployments that
inject one key from a secret manager.
"""

from __future__ import annotations

import hmac

from fastapi import Request
from starlette.applications import Starlette

from loopdesk import store as db
from loopdesk.api.keycache import KeyCache
from loopdesk.errors import Unauthorized

ENV_KEY_NAME = "env"


def bearer_key(authorization: str) -> str | None:
    """The key of an `Authorization: Bearer KEY` header value, else None."""
    scheme, _, presented = authorization.partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        return None
    return presented


async def require_api_key(request: Request) -> str:
    """The calling key's name; 401 without a valid key."""
    presented = bearer_key(request.headers.get("authorization", ""))
    if presented is None:
        raise Unauthorized("missing bearer API key")
    name = await key_name(request.app, presented)
    if name is None:
        raise Unauthorized("invalid API key")
    return name


async def key_name(app: Starlette, presented: str) -> str | None:
    """The name of the key `presented` is (the env key, else a stored one), or None.
    The console's sign-in checks a key with this too."""
    env_key: str | None = app.state.env_api_key
    if env_key and hmac.compare_digest(presented.encode(), env_key.encode()):
        return ENV_KEY_NAME
    cache: KeyCache = app.state.key_cache
    store: db.Store = app.state.store

    async def stored() -> str | None:
        async with store.reader() as session:
            return await db.verify_api_key(session, presented)

    return await cache.verify(presented, stored)
