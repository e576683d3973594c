"""Run an action against Loop and audit it before answering.

The audit row (key name, time, inputs, Loop's result) is written in the same
transaction as any store change the action makes. With an idempotency key, a retried
request gets the first outcome back and Loop is not called again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, get_args

from loopdesk import store as db
from loopdesk.actions.outcome import ActionOutcome
from loopdesk.domain.normalize import normalize_notes
from loopdesk.errors import InvalidInput, LoopdeskError
from loopdesk.loop.returns import LoopReturnsClient, ReturnAction

AllowlistType = Literal["order", "product", "email", "product_tag"]
ALLOWLIST_TYPES: tuple[str, ...] = get_args(AllowlistType)
RETURN_ACTIONS: tuple[str, ...] = get_args(ReturnAction)
MAX_NOTE_LENGTH = 255


class ActionRunner:
    def __init__(self, store: db.Store, loop: LoopReturnsClient) -> None:
        self.store = store
        self.loop = loop

    async def run(
        self,
        action: str,
        inputs: dict[str, Any],
        call: Callable[[], Awaitable[dict[str, Any]]],
        *,
        key_name: str,
        idempotency_key: str | None = None,
        after: Callable[[Any], Awaitable[None]] | None = None,
    ) -> ActionOutcome:
        if idempotency_key:
            async with self.store.session() as session:
                first = await db.find_idempotent(session, key_name, idempotency_key)
            if first is not None:
                return ActionOutcome.from_json(first.result, action)
        try:
            outcome = ActionOutcome(200, await call(), action)
        except LoopdeskError as exc:
            outcome = ActionOutcome.from_error(exc, action)
        async with self.store.session() as session:
            if outcome.ok and after is not None:
                await after(session)
            await db.record_audit(
                session,
                key_name=key_name,
                action=action,
                inputs=inputs,
                result=outcome.to_json(),
                ok=outcome.ok,
                idempotency_key=idempotency_key,
            )
        return outcome

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
        return await self.run("return-link", inputs, call, **audit)

    async def allowlist_add(self, entry_type: str, value: str, **audit: Any) -> ActionOutcome:
        if entry_type not in ALLOWLIST_TYPES:
            raise InvalidInput(f"type must be one of {', '.join(ALLOWLIST_TYPES)}")
        if not value.strip():
            raise InvalidInput("value must not be empty")

        async def call() -> dict[str, Any]:
            entry = await self.loop.create_allowlist_entry(entry_type, value)
            return {"id": str(entry["id"]), "type": entry["type"], "value": entry["value"]}

        inputs = {"type": entry_type, "value": value}
        return await self.run("allowlist.add", inputs, call, **audit)

    async def allowlist_delete(self, entry_id: str, **audit: Any) -> ActionOutcome:
        async def call() -> dict[str, Any]:
            await self.loop.delete_allowlist_entry(entry_id)
            return {"id": entry_id, "deleted": True}

        return await self.run("allowlist.delete", {"id": entry_id}, call, **audit)

    async def add_note(self, return_id: str, content: str, **audit: Any) -> ActionOutcome:
        if not content.strip() or len(content) > MAX_NOTE_LENGTH:
            raise InvalidInput(f"content is required and at most {MAX_NOTE_LENGTH} characters")
        notes: list[Any] = []

        async def call() -> dict[str, Any]:
            await self.loop.add_note(return_id, content)
            notes.extend(await self.loop.list_notes(return_id))
            return {"returnId": return_id, "content": content, "added": True}

        async def after(session: Any) -> None:
            await db.replace_notes(session, return_id, normalize_notes(notes, return_id).items)

        inputs = {"returnId": return_id, "content": content}
        return await self.run("note.add", inputs, call, after=after, **audit)

    async def return_action(self, return_id: str, action: str, **audit: Any) -> ActionOutcome:
        if action not in RETURN_ACTIONS:
            raise InvalidInput(f"action must be one of {', '.join(RETURN_ACTIONS)}")

        async def call() -> dict[str, Any]:
            await self.loop.return_action(return_id, action)  # type: ignore[arg-type]  # checked above
            return {"returnId": return_id, "action": action, "accepted": True}

        return await self.run(f"return.{action}", {"returnId": return_id}, call, **audit)
