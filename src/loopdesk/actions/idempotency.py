"""`Idempotency-Key` on actions, after Stripe's conventions.

- Keys are scoped per API key and claimed in the store before Loop is called, so
  of concurrent requests with one key exactly one runs.
- A request that finds its key in progress waits a little for the first one's
  answer, then gets 409; one that finds a finished key gets the first answer back.
- A key reused for another request (other action or inputs: the fingerprint) is a
  422, never the first answer.
- A failure Loop did not apply releases the key, so a retry runs again; a success, or
  a failure Loop may have applied, is kept and replayed. Whether a 5xx or a timeout
  left the write applied is read from Loop first where it can tell (`actions.verify`).
- A key left in progress longer than any action can take means the process stopped
  mid-action: a 409 saying the outcome is unknown, never a blind second run.
- Keys are forgotten 24 hours after their first use.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from loopdesk import store as db
from loopdesk.actions.outcome import ActionOutcome
from loopdesk.errors import IdempotencyConflict, IdempotencyMismatch, IdempotencyOutcomeUnknown
from loopdesk.store.types import utcnow


@dataclass(frozen=True)
class KeyPolicy:
    # How long a request waits for another one running with its key before a 409.
    wait_s: float = 5.0
    # Longer than any action can take (the upstream retry budget is 30 s plus one
    # attempt's timeouts by default): a key in progress for longer was abandoned.
    stale_after_s: float = 300.0
    ttl_s: float = 24 * 3600.0
    poll_s: float = 0.05


def fingerprint(action: str, inputs: dict[str, Any]) -> str:
    """SHA-256 of the action and its inputs as canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(
        {"action": action, "inputs": inputs},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Held:
    """Either this request holds the key (`claim_id`) or the first answer is `replay`."""

    claim_id: int | None = None
    replay: ActionOutcome | None = None


class IdempotencyKeys:
    def __init__(self, store: db.Store, policy: KeyPolicy | None = None) -> None:
        self.store = store
        self.policy = policy or KeyPolicy()

    async def hold(
        self, *, key_name: str, idempotency_key: str, action: str, inputs: dict[str, Any]
    ) -> Held:
        """Claim the key for this request, or the first answer to replay; raises
        `IdempotencyMismatch` (422) or `IdempotencyConflict` (409)."""
        wanted = fingerprint(action, inputs)
        deadline = time.monotonic() + self.policy.wait_s
        while True:
            async with self.store.session() as session:
                claim = await db.claim_idempotency_key(
                    session,
                    key_name=key_name,
                    idempotency_key=idempotency_key,
                    action=action,
                    fingerprint=wanted,
                    expired_before=utcnow() - timedelta(seconds=self.policy.ttl_s),
                )
            if claim.claimed:
                return Held(claim_id=claim.row.id)
            row = await self._settled(claim.row, wanted, deadline)
            if row is None:
                continue  # the first request failed without effect and let go: run
            if row.status == "done":
                return Held(replay=ActionOutcome.from_json(row.response, action).as_replay())
            if self._stale(row):
                raise IdempotencyOutcomeUnknown(
                    "an earlier request with this Idempotency-Key started at "
                    f"{row.started_at.isoformat()} and never finished, so whether Loop "
                    "applied it is unknown; check Loop and the audit log, then use a "
                    "new key if it is still needed",
                    details=_details(row, outcomeUnknown=True),
                )
            raise IdempotencyConflict(
                "a request with this Idempotency-Key is still in progress; "
                "retry once it has finished",
                details=_details(row, retryable=True),
            )

    async def _settled(
        self, row: db.IdempotencyRow, wanted: str, deadline: float
    ) -> db.IdempotencyRow | None:
        """The row once it is no longer in progress (None: released), or as it stands
        at the deadline. Checks the fingerprint first: a mismatch never waits."""
        current: db.IdempotencyRow | None = row
        while current is not None:
            if current.fingerprint != wanted:
                raise IdempotencyMismatch(
                    "this Idempotency-Key was used for another request "
                    f"({current.action} with other inputs); use a new key for a new request",
                    details=_details(current),
                )
            if current.status != "in_progress" or self._stale(current):
                return current
            if time.monotonic() >= deadline:
                return current
            await asyncio.sleep(self.policy.poll_s)
            async with self.store.reader() as session:
                current = await db.get_idempotency_key(session, row.key_name, row.idempotency_key)
        return None

    def _stale(self, row: db.IdempotencyRow) -> bool:
        age = (utcnow() - row.started_at).total_seconds()
        return row.status == "in_progress" and age > self.policy.stale_after_s


async def settle_key(
    session: AsyncSession, claim_id: int, outcome: ActionOutcome, audit_id: int
) -> None:
    """Keep the answer under the key, or release the key when Loop surely did not apply
    the call. Called in the transaction that writes the audit row, so the two agree."""
    if outcome.applied_or_unknown:
        await db.finish_idempotency_key(
            session, claim_id, response=outcome.to_json(), audit_id=audit_id
        )
    else:
        await db.release_idempotency_key(session, claim_id)


def _details(row: db.IdempotencyRow, **extra: Any) -> dict[str, Any]:
    return {
        "idempotencyKey": row.idempotency_key,
        "action": row.action,
        "startedAt": row.started_at.isoformat(),
        **extra,
    }
