"""Run an action against Loop and audit it before answering.

Every call to Loop gets its audit row (key name, time, inputs, Loop's result) as soon
as Loop answered, before anything else can fail. With an `Idempotency-Key` the key is
claimed before Loop is called and settled in the audit row's transaction, so a retried
or concurrent request gets the first outcome back and Loop is not called again (rules
in `actions.idempotency`). A failure after which Loop may have applied the write is
checked with reads first (`actions.verify`), and answered and kept as they tell.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal, get_args

import structlog

from loopdesk import store as db
from loopdesk.actions.idempotency import IdempotencyKeys, KeyPolicy, settle_key
from loopdesk.actions.outcome import ActionOutcome
from loopdesk.actions.verify import (
    AllowlistCheck,
    NoteCheck,
    RepeatCheck,
    ReturnStateCheck,
    Verification,
    VerifyPolicy,
    WriteCheck,
    allowlist_answer,
    needs_check,
    unknown,
)
from loopdesk.domain.normalize import normalize_notes
from loopdesk.errors import InvalidInput, LoopdeskError, LoopError
from loopdesk.loop.returns import LoopReturnsClient, ReturnAction

log = structlog.get_logger("loopdesk.actions")

AllowlistType = Literal["order", "product", "email", "product_tag"]
ALLOWLIST_TYPES: tuple[str, ...] = get_args(AllowlistType)
RETURN_ACTIONS: tuple[str, ...] = get_args(ReturnAction)
MAX_NOTE_LENGTH = 255


class ActionRunner:
    def __init__(
        self,
        store: db.Store,
        loop: LoopReturnsClient,
        *,
        keys: KeyPolicy | None = None,
        verify: VerifyPolicy | None = None,
    ) -> None:
        self.store = store
        self.loop = loop
        self.keys = IdempotencyKeys(store, keys)
        self.verify = verify or VerifyPolicy()

    async def run(
        self,
        action: str,
        inputs: dict[str, Any],
        call: Callable[[], Awaitable[dict[str, Any]]],
        *,
        key_name: str,
        idempotency_key: str | None = None,
        refresh: Callable[[], Awaitable[None]] | None = None,
        check: WriteCheck | None = None,
    ) -> ActionOutcome:
        """`call` makes the one write to Loop; `refresh` then updates our copy of what
        it changed, on success only and best effort (Loop's change stands either way);
        `check` reads Loop around the write when its outcome is unknown."""
        claim_id = None
        if idempotency_key:
            held = await self.keys.hold(
                key_name=key_name, idempotency_key=idempotency_key, action=action, inputs=inputs
            )
            if held.replay is not None:
                return held.replay
            claim_id = held.claim_id
        if check is not None:
            await check.before()
        outcome, error = await self._call(action, call)
        if check is not None and needs_check(error):
            outcome = outcome.verified(await self._verify(action, check, error))
        # A failure here leaves the key in progress: later requests are told the outcome
        # is unknown, which is true, rather than running the action again.
        async with self.store.session() as session:
            audit_id = await db.record_audit(
                session,
                key_name=key_name,
                action=action,
                inputs=inputs,
                result=outcome.audit_json(),
                ok=outcome.ok,
                idempotency_key=idempotency_key,
            )
            if claim_id is not None:
                await settle_key(session, claim_id, outcome, audit_id)
        if outcome.ok and refresh is not None:
            await self._refresh(action, refresh)
        return outcome

    async def _call(
        self, action: str, call: Callable[[], Awaitable[dict[str, Any]]]
    ) -> tuple[ActionOutcome, LoopdeskError | None]:
        try:
            return ActionOutcome(200, await call(), action), None
        except LoopdeskError as exc:
            return ActionOutcome.from_error(exc, action), exc
        except Exception:
            # Our own bug after the request left: audit it as of unknown outcome.
            log.exception("action.failed", action=action)
            return ActionOutcome.unexpected(action), None

    async def _verify(self, action: str, check: WriteCheck, error: LoopError) -> Verification:
        """What Loop's state says of a write that failed with an unknown outcome; any
        failure of the reads themselves leaves it unknown."""
        policy = self.verify
        try:
            await asyncio.sleep(policy.settle_s)
            async with asyncio.timeout(policy.timeout_s):
                verification = await check.after(error)
        except TimeoutError:
            verification = unknown(f"the reads to check took longer than {policy.timeout_s:g} s")
        except LoopdeskError as exc:
            verification = unknown(f"the reads to check failed ({exc.code})")
        except Exception:
            log.exception("action.verify_failed", action=action)
            verification = unknown("the reads to check failed")
        log.info(
            "action.verified",
            action=action,
            upstream_status=error.status,
            result=verification.verdict.value,
        )
        return verification

    async def _refresh(self, action: str, refresh: Callable[[], Awaitable[None]]) -> None:
        try:
            await refresh()
        except Exception as exc:
            # The stored copy lags until the next fetch; the answer is still Loop's.
            log.warning("action.refresh_failed", action=action, error=type(exc).__name__)

    # --- the actions -----------------------------------------------------------

    async def return_link(
        self, order_name: str, zip_code: str, *, gift: bool = False, **audit: Any
    ) -> ActionOutcome:
        if not order_name.strip() or not zip_code.strip():
            raise InvalidInput("orderName and zip are both required")

        async def call() -> dict[str, Any]:
            answer = await self.loop.create_return_link(order_name, zip_code, gift=gift)
            return {"url": str(answer["url"])}

        inputs: dict[str, Any] = {"orderName": order_name, "zip": zip_code}
        if gift:
            inputs["gift"] = True
        return await self.run("return-link", inputs, call, check=RepeatCheck(call), **audit)

    async def allowlist_add(self, entry_type: str, value: str, **audit: Any) -> ActionOutcome:
        if entry_type not in ALLOWLIST_TYPES:
            raise InvalidInput(f"type must be one of {', '.join(ALLOWLIST_TYPES)}")
        if not value.strip():
            raise InvalidInput("value must not be empty")

        async def call() -> dict[str, Any]:
            return allowlist_answer(await self.loop.create_allowlist_entry(entry_type, value))

        inputs = {"type": entry_type, "value": value}
        check = AllowlistCheck(self.loop, entry_type, value, self.verify)
        return await self.run("allowlist.add", inputs, call, check=check, **audit)

    async def allowlist_delete(self, entry_id: str, **audit: Any) -> ActionOutcome:
        async def call() -> dict[str, Any]:
            await self.loop.delete_allowlist_entry(entry_id)
            return {"id": entry_id, "deleted": True}

        return await self.run("allowlist.delete", {"id": entry_id}, call, **audit)

    async def add_note(self, return_id: str, content: str, **audit: Any) -> ActionOutcome:
        if not content.strip() or len(content) > MAX_NOTE_LENGTH:
            raise InvalidInput(f"content is required and at most {MAX_NOTE_LENGTH} characters")

        answer = {"returnId": return_id, "content": content, "added": True}

        async def call() -> dict[str, Any]:
            await self.loop.add_note(return_id, content)
            return dict(answer)

        async def refresh() -> None:
            notes = normalize_notes(await self.loop.list_notes(return_id), return_id).items
            async with self.store.session() as session:
                await db.replace_notes(session, return_id, notes)

        inputs = {"returnId": return_id, "content": content}
        check = NoteCheck(self.loop, return_id, content, answer, self.verify)
        return await self.run("note.add", inputs, call, refresh=refresh, check=check, **audit)

    async def return_action(self, return_id: str, action: str, **audit: Any) -> ActionOutcome:
        if action not in RETURN_ACTIONS:
            raise InvalidInput(f"action must be one of {', '.join(RETURN_ACTIONS)}")

        answer = {"returnId": return_id, "action": action, "accepted": True}

        async def call() -> dict[str, Any]:
            await self.loop.return_action(return_id, action)  # type: ignore[arg-type]  # checked above
            return dict(answer)

        check = ReturnStateCheck(self.loop, return_id, action, answer, self.verify)
        name = f"return.{action}"
        return await self.run(name, {"returnId": return_id}, call, check=check, **audit)
