"""API keys: only a SHA-256 hash and a display prefix are stored, never the key."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loopdesk.errors import InvalidInput
from loopdesk.store.dialect import insert, rowcount
from loopdesk.store.schema import api_keys
from loopdesk.store.types import utcnow

KEY_PREFIX = "ld_"
PREFIX_LENGTH = 8
MAX_NAME = 128


@dataclass(frozen=True)
class ApiKeyRow:
    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def key_hash(key: str) -> str:
    # The keys are 256-bit random tokens, so a fast unsalted hash is enough: there is
    # nothing to brute-force, and a lookup must stay cheap on every request.
    return hashlib.sha256(key.encode()).hexdigest()


async def create_api_key(session: AsyncSession, name: str) -> str:
    """A new key named `name`, shown this once. A revoked key's name can be reused."""
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidInput(f"an API key name has 1 to {MAX_NAME} characters")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    values = {
        "name": name,
        "hash": key_hash(key),
        "prefix": key[:PREFIX_LENGTH],
        "created_at": utcnow(),
        "revoked_at": None,
    }
    statement = insert(session, api_keys).values(values)
    excluded = statement.excluded
    # One statement both creates and reuses a revoked name, so two concurrent creates
    # of one name cannot both succeed.
    statement = statement.on_conflict_do_update(
        index_elements=[api_keys.c.name],
        set_={col: excluded[col] for col in ("hash", "prefix", "created_at", "revoked_at")},
        where=api_keys.c.revoked_at.is_not(None),
    )
    if await rowcount(session, statement) == 0:
        raise InvalidInput(f"an active API key named {name!r} exists", details={"name": name})
    return key


async def revoke_api_key(session: AsyncSession, name: str) -> bool:
    """Revoke the active key `name`; False when there is none."""
    statement = (
        update(api_keys)
        .where(api_keys.c.name == name.strip(), api_keys.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return await rowcount(session, statement) > 0


async def verify_api_key(session: AsyncSession, presented: str) -> str | None:
    """The name of the active key `presented` is, or None.

    Candidates are found by their non-secret prefix; the hashes are then compared in
    constant time, so response timing tells nothing about the stored hash.
    """
    if not presented.startswith(KEY_PREFIX) or len(presented) <= PREFIX_LENGTH:
        return None
    query = select(api_keys.c.name, api_keys.c.hash).where(
        api_keys.c.prefix == presented[:PREFIX_LENGTH], api_keys.c.revoked_at.is_(None)
    )
    digest = key_hash(presented).encode()
    found = None
    for name, stored in await session.execute(query):
        if hmac.compare_digest(digest, stored.encode()):
            found = name
    return found


async def list_api_keys(session: AsyncSession) -> list[ApiKeyRow]:
    query = select(
        api_keys.c.id,
        api_keys.c.name,
        api_keys.c.prefix,
        api_keys.c.created_at,
        api_keys.c.revoked_at,
    ).order_by(api_keys.c.name)
    return [
        ApiKeyRow(
            id=row.id,
            name=row.name,
            prefix=row.prefix,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
        )
        for row in await session.execute(query)
    ]
