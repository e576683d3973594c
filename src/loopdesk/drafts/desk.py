"""A whole return made step by step through Loop's Draft Returns API, each step audited.

`DraftDesk` is what the API, the console and the guide call. Each write:

1. is refused with 403 `drafts_disabled` while the merchant's policy file says links
   only (`[returns] create_in_conversation = false`);
2. has its inputs checked (ids are positive integers, types from Loop's enumerations):
   422 before Loop is called;
3. is checked against the draft's `links`: the stored draft's (Loop's last answer),
   and when they do not offer the step, those of the draft read from Loop now (it may
   have moved without loopdesk: paid, expired). A step Loop does not offer is 409
   `draft_step_not_allowed` with `details.nextSteps`, and the step is not sent. A
   request whose `Idempotency-Key` is already known skips this check: the runner
   answers it (the first answer again, or its refusal);
4. runs through the `ActionRunner` (audit row with the inputs and Loop's result;
   `Idempotency-Key`); a submit that failed with an unknown outcome is checked by
   reading the draft (`drafts.verify`);
5. keeps Loop's answer as the stored draft. After Loop refused a step, the draft is
   read again (best effort) so the stored links, and the answer's `nextSteps`, are
   Loop's current ones.

Every method answers a `DraftResult` (never raises a `LoopdeskError`): `body` is what
the HTTP API answers with `status`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from loopdesk import store as db
from loopdesk.actions.outcome import ActionOutcome
from loopdesk.actions.run import ActionRunner
from loopdesk.domain.drafts import (
    CREDIT_TYPES,
    RETURN_TYPES,
    Draft,
    DraftTotals,
    get_return_details_output,
    input_id,
    next_steps,
    parse_draft,
    require_step,
)
from loopdesk.domain.drafts.failures import draft_errors, error_list
from loopdesk.drafts.verify import SubmitCheck
from loopdesk.drafts.view import draft_view
from loopdesk.errors import (
    DraftRejected,
    DraftsDisabled,
    DraftStepNotAllowed,
    InvalidInput,
    InvalidUpstreamData,
    LoopdeskError,
    LoopError,
    LoopValidationError,
)
from loopdesk.loop.drafts import LoopDraftsClient
from loopdesk.policy.file import Policy

log = structlog.get_logger(__name__)

MAX_ACTOR = 128  # the audit log's and the drafts table's width
MAX_CONVERSATION_ID = 128
MAX_TEXT = 500
DISABLED_MESSAGE = (
    "creating returns in the conversation is turned off for this shop "
    "(policy file: [returns] create_in_conversation = false); send the return link instead"
)

# What each audited step is called (the audit log's `action`), by the client call.
ACTIONS = {
    "create": "draft.start",
    "add_returning_item": "draft.add_item",
    "remove_returning_item": "draft.remove_item",
    "set_return_reason": "draft.reason",
    "set_return_type": "draft.type",
    "add_exchange_item": "draft.exchange",
    "finalize_items": "draft.finalize",
    "set_credit_type": "draft.credit_type",
    "select_return_method": "draft.method",
    "submit": "draft.submit",
    "cancel": "draft.cancel",
}


@dataclass(frozen=True)
class DraftResult:
    ok: bool
    status: int  # the HTTP status the API answers with
    draft: Draft | None  # the draft after the step (the stored one on failure, if any)
    body: dict[str, Any] = field(default_factory=dict)  # the view, or the error envelope
    totals: DraftTotals | None = None
    # "loop_validation_error" (422 with Loop's errors), "draft_step_not_allowed",
    # "loop_unavailable", "drafts_disabled", "invalid_input", ...
    error_code: str | None = None
    loop_errors: tuple[dict[str, Any], ...] = ()  # [{"code": str|None, "message": str}]
    outcome_unknown: bool = False  # a write that failed so that Loop may have applied it
    replayed: bool = False  # the answer kept under the Idempotency-Key; Loop not called
    return_id: str | None = None
    status_page_url: str | None = None

    @property
    def next_steps(self) -> tuple[str, ...]:
        return () if self.draft is None else next_steps(self.draft)


class _Refused(Exception):
    """A step the draft's links do not offer, with the draft that says so."""

    def __init__(self, error: DraftStepNotAllowed, draft: Draft) -> None:
        super().__init__(error.message)
        self.error = error
        self.draft = draft


@dataclass
class _Held:
    """What a step's call saw, for the result (the runner keeps only the body)."""

    draft: Draft | None = None
    status_page_url: str | None = None
    error: LoopdeskError | None = None  # what the call raised


class DraftDesk:
    def __init__(
        self, store: db.Store, client: LoopDraftsClient, runner: ActionRunner, policy: Policy
    ) -> None:
        self.store = store
        self.client = client
        self.runner = runner
        self.policy = policy

    def enabled(self) -> bool:
        """The merchant's switch: False means return links only."""
        return self.policy.returns.create_in_conversation

    # --- starting, reading --------------------------------------------------------

    async def start(
        self,
        order_name: str,
        secondary_input: str,
        *,
        is_gift: bool = False,
        actor: str,
        conversation_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> DraftResult:
        """A new draft for the order (Loop checks the ZIP, email or phone against it)."""
        try:
            self._check_enabled()
            _check_actor(actor)
            name = _text(order_name, "orderName")
            secondary = _text(secondary_input, "secondaryInput")
            if not isinstance(is_gift, bool):
                raise InvalidInput("isGift must be true or false", details={"field": "isGift"})
            if conversation_id is not None:
                conversation_id = _text(
                    conversation_id, "conversationId", max_length=MAX_CONVERSATION_ID
                )
        except LoopdeskError as exc:
            return _failed(exc)
        held = _Held()

        async def call() -> dict[str, Any]:
            draft = await self._complete(
                await self.client.create(name, secondary, is_gift=is_gift), None
            )
            held.draft = draft
            return draft_view(draft, order_name=_order_name(draft, name))

        inputs: dict[str, Any] = {"orderName": name, "secondaryInput": secondary}
        if is_gift:
            inputs["isGift"] = True
        if conversation_id is not None:
            inputs["conversationId"] = conversation_id
        result = await self._run(
            "create", inputs, call, held, actor=actor, idempotency_key=idempotency_key
        )
        if held.draft is not None and held.draft.id is not None and result.ok:
            await self._save(
                held.draft, order_name=name, actor=actor, conversation_id=conversation_id
            )
        return replace(result, status=201) if result.ok else result

    async def get(self, draft_id: str, *, actor: str) -> DraftResult:
        """The draft now, from Loop (and kept); with its return's status page once
        submitted."""
        try:
            self._check_enabled()
            _check_actor(actor)
            wanted = _id(draft_id, "draftId")
            draft = await self.client.get(wanted)
        except LoopdeskError as exc:
            return _failed(exc, await self._stored_draft(draft_id))
        stored = await self._save(draft, order_name=None, actor=actor, conversation_id=None)
        url = await self._status_page(draft.return_id)
        order_name = stored.order_name if stored else None
        body = draft_view(draft, order_name=order_name, status_page_url=url)
        return _succeeded(draft, body, status_page_url=url)

    async def totals(self, draft_id: str, *, actor: str) -> DraftResult:
        """What the return is worth and what is due (offered once the items are final)."""
        draft: Draft | None = None
        try:
            self._check_enabled()
            _check_actor(actor)
            wanted = str(_id(draft_id, "draftId"))
            stored, draft = await self._legal(wanted, actor, "totals", None)
            totals = await self.client.totals(wanted)
        except _Refused as refused:
            return _failed(refused.error, refused.draft)
        except LoopdeskError as exc:
            return _failed(exc, draft if draft is not None else await self._stored_draft(draft_id))
        order_name = stored.order_name if stored else None
        body = draft_view(draft, order_name=order_name, totals=totals)
        return _succeeded(draft, body, totals=totals)

    async def return_details(
        self,
        *,
        return_id: str | None = None,
        order_id: str | None = None,
        order_name: str | None = None,
        currency_type: str | None = None,
    ) -> DraftResult:
        """A return's details (a submitted draft's, or any): `body` is the camelCase
        details, amounts in minor units. A read of returns, so the switch leaves it on."""
        try:
            details = await self.client.return_details(
                return_id=return_id,
                order_id=order_id,
                order_name=order_name,
                currency_type=currency_type,
            )
        except LoopdeskError as exc:
            return _failed(exc)
        body = get_return_details_output(details)
        return DraftResult(
            ok=True,
            status=200,
            draft=None,
            body=body,
            return_id=details.id,
            status_page_url=details.status_page_url,
        )

    async def recent(
        self,
        *,
        limit: int = 50,
        conversation_id: str | None = None,
        order_names: Sequence[str] | None = None,
    ) -> list[db.StoredDraft]:
        """The drafts loopdesk made or saw, newest change first (of these orders only,
        when `order_names` is given: `#1086`, `1086` and ` #1086` are one order)."""
        async with self.store.reader() as session:
            return await db.list_drafts(
                session, conversation_id=conversation_id, order_names=order_names, limit=limit
            )

    # --- the steps ------------------------------------------------------------------

    async def add_item(
        self,
        draft_id: str,
        order_line_item_id: str,
        *,
        actor: str,
        idempotency_key: str | None = None,
    ) -> DraftResult:
        return await self._step(
            "add_returning_item",
            draft_id,
            {"orderLineItemId": order_line_item_id},
            lambda d: self.client.add_returning_item(d, order_line_item_id),
            actor=actor,
            idempotency_key=idempotency_key,
        )

    async def remove_item(
        self,
        draft_id: str,
        returning_item_id: str,
        *,
        actor: str,
        idempotency_key: str | None = None,
    ) -> DraftResult:
        return await self._step(
            "remove_returning_item",
            draft_id,
            {},
            lambda d: self.client.remove_returning_item(d, returning_item_id),
            item=returning_item_id,
            actor=actor,
            idempotency_key=idempotency_key,
        )

    async def set_reason(
        self,
        draft_id: str,
        returning_item_id: str,
        reason_id: str,
        *,
        actor: str,
        idempotency_key: str | None = None,
    ) -> DraftResult:
        return await self._step(
            "set_return_reason",
            draft_id,
            {"reasonId": reason_id},
            lambda d: self.client.set_return_reason(d, returning_item_id, reason_id),
            item=returning_item_id,
            actor=actor,
            idempotency_key=idempotency_key,
        )

    async def set_type(
        self,
        draft_id: str,
        returning_item_id: str,
        return_type: str,
        *,
        actor: str,
        idempotency_key: str | None = None,
    ) -> DraftResult:
        return await self._step(
            "set_return_type",
            draft_id,
            {"returnType": return_type},
            lambda d: self.client.set_return_type(d, returning_item_id, return_type),
            item=returning_item_id,
            choices={"returnType": RETURN_TYPES},
            actor=actor,
            idempotency_key=idempotency_key,
        )

    async def add_exchange(
        self,
        draft_id: str,
        returning_item_id: str,
        variant_id: str,
        *,
        actor: str,
        idempotency_key: str | None = None,
    ) -> DraftResult:
        return await self._step(
            "add_exchange_item",
            draft_id,
            {"variantId": variant_id},
            lambda d: self.client.add_exchange_item(d, returning_item_id, variant_id),
            item=returning_item_id,
            actor=actor,
            idempotency_key=idempotency_key,
        )

    async def finalize(
        self, draft_id: str, *, actor: str, idempotency_key: str | None = None
    ) -> DraftResult:
        return await self._step(
            "finalize_items",
            draft_id,
            {},
            self.client.finalize_items,
            actor=actor,
            idempotency_key=idempotency_key,
        )

    async def set_credit_type(
        self, draft_id: str, credit_type: str, *, actor: str, idempotency_key: str | None = None
    ) -> DraftResult:
        return await self._step(
            "set_credit_type",
            draft_id,
            {"creditType": credit_type},
            lambda d: self.client.set_credit_type(d, credit_type),
            choices={"creditType": CREDIT_TYPES},
            actor=actor,
            idempotency_key=idempotency_key,
        )

    async def select_method(
        self,
        draft_id: str,
        return_method_id: str,
        *,
        actor: str,
        idempotency_key: str | None = None,
    ) -> DraftResult:
        return await self._step(
            "select_return_method",
            draft_id,
            {"returnMethodId": return_method_id},
            lambda d: self.client.select_return_method(d, return_method_id),
            actor=actor,
            idempotency_key=idempotency_key,
        )

    async def submit(
        self, draft_id: str, *, actor: str, idempotency_key: str | None = None
    ) -> DraftResult:
        """The draft becomes a return: `returnId`, and `statusPageUrl` from the return's
        details (null when that read fails; the return stands)."""
        return await self._step(
            "submit",
            draft_id,
            {},
            self.client.submit,
            actor=actor,
            idempotency_key=idempotency_key,
        )

    async def cancel(
        self, draft_id: str, *, actor: str, idempotency_key: str | None = None
    ) -> DraftResult:
        return await self._step(
            "cancel",
            draft_id,
            {},
            self.client.cancel,
            actor=actor,
            idempotency_key=idempotency_key,
        )

    # --- one step -------------------------------------------------------------------

    async def _step(
        self,
        call_name: str,
        draft_id: str,
        fields: dict[str, Any],
        send: Callable[[str], Awaitable[Draft]],
        *,
        actor: str,
        idempotency_key: str | None,
        item: str | None = None,
        choices: dict[str, tuple[str, ...]] | None = None,
    ) -> DraftResult:
        stored: db.StoredDraft | None = None
        draft: Draft | None = None
        try:
            self._check_enabled()
            _check_actor(actor)
            wanted = str(_id(draft_id, "draftId"))
            inputs: dict[str, Any] = {"draftId": wanted}
            if item is not None:
                inputs["returningItemId"] = str(_id(item, "returningItemId"))
            for name, value in fields.items():
                allowed = (choices or {}).get(name)
                if allowed is not None:
                    inputs[name] = _choice(value, name, allowed)
                else:
                    inputs[name] = str(_id(value, name))
            if not await self._key_known(actor, idempotency_key):
                stored, draft = await self._legal(
                    wanted, actor, call_name, inputs.get("returningItemId")
                )
        except _Refused as refused:
            return _failed(refused.error, refused.draft)
        except LoopdeskError as exc:
            if draft is None and stored is not None:
                draft = _parsed(stored)
            return _failed(exc, draft)
        order_name = stored.order_name if stored is not None else None
        held = _Held()

        async def answer(draft: Draft) -> dict[str, Any]:
            """The step's answer for `draft` (after a submit: with the status page)."""
            url = await self._status_page(draft.return_id) if call_name == "submit" else None
            held.draft, held.status_page_url = draft, url
            return draft_view(draft, order_name=order_name, status_page_url=url)

        async def call() -> dict[str, Any]:
            return await answer(await self._complete(await send(wanted), wanted))

        check = SubmitCheck(self.client, wanted, answer) if call_name == "submit" else None
        result = await self._run(
            call_name,
            inputs,
            call,
            held,
            actor=actor,
            idempotency_key=idempotency_key,
            check=check,
        )
        if result.replayed:
            kept = await self._stored(wanted)
            return replace(result, draft=_parsed(kept) if kept is not None else None)
        after = held.draft
        if after is None and check is not None:
            after = check.draft
        if after is None and not result.outcome_unknown and _loop_answered(result):
            # Loop refused the step: its links may have changed (expired, paid, ...).
            after = await self._refetch(wanted)
        if after is not None:
            await self._save(after, order_name=None, actor=actor, conversation_id=None)
            return _with_draft(result, after)
        return result

    async def _run(
        self,
        call_name: str,
        inputs: dict[str, Any],
        call: Callable[[], Awaitable[dict[str, Any]]],
        held: _Held,
        *,
        actor: str,
        idempotency_key: str | None,
        check: SubmitCheck | None = None,
    ) -> DraftResult:
        try:
            outcome = await self.runner.run(
                ACTIONS[call_name],
                inputs,
                _worded(call, held),
                key_name=actor,
                idempotency_key=idempotency_key,
                check=check,
            )
        except LoopdeskError as exc:  # the Idempotency-Key's refusals
            return _failed(exc)
        return _from_outcome(outcome, held)

    # --- the stored draft -----------------------------------------------------------

    async def _legal(
        self, draft_id: str, actor: str, call_name: str, item: str | None
    ) -> tuple[db.StoredDraft | None, Draft]:
        """The draft, if its links offer the step; `DraftStepNotAllowed` otherwise.

        The stored draft (Loop's last answer) is asked first. A step it does not offer
        is asked again of the draft read from Loop now, since what loopdesk did not do
        may have moved it (the customer paid what was due, it expired): the refusal is
        always Loop's current word, and the step itself is never sent.
        """
        stored = await self._stored(draft_id)
        draft = _parsed(stored) if stored is not None else None
        if draft is not None and draft.id is not None:
            try:
                require_step(draft, call_name, returning_item_id=item)
                return stored, draft
            except DraftStepNotAllowed:
                pass
        draft = await self.client.get(draft_id)
        stored = (
            await self._save(draft, order_name=None, actor=actor, conversation_id=None) or stored
        )
        try:
            require_step(draft, call_name, returning_item_id=item)
        except DraftStepNotAllowed as exc:
            raise _Refused(exc, draft) from None
        return stored, draft

    async def _stored_draft(self, draft_id: object) -> Draft | None:
        stored = await self._stored(draft_id)
        return None if stored is None else _parsed(stored)

    async def _stored(self, draft_id: object) -> db.StoredDraft | None:
        if not isinstance(draft_id, str | int) or isinstance(draft_id, bool):
            return None
        key = str(draft_id).strip()
        if not key.isascii() or not key.isdigit() or len(key) > 19:
            return None
        async with self.store.reader() as session:
            return await db.get_draft(session, str(int(key)))

    async def _save(
        self,
        draft: Draft,
        *,
        order_name: str | None,
        actor: str,
        conversation_id: str | None,
    ) -> db.StoredDraft | None:
        """Keep Loop's answer. A partial one (no draft id) only moves a known draft's
        state and return id; its stored links stay until the next whole answer."""
        try:
            async with self.store.session() as session:
                if draft.id is None or draft.body is None:
                    return None
                await db.save_draft(
                    session,
                    draft.id,
                    order_name=order_name or _order_name(draft, ""),
                    key_name=actor[:MAX_ACTOR],
                    conversation_id=conversation_id,
                    state=draft.state,
                    body=dict(draft.body),
                    return_id=draft.return_id,
                )
                return await db.get_draft(session, draft.id)
        except Exception:
            # Loop's answer stands; the stored copy lags until the next step reads it.
            log.exception("drafts.save_failed", draft_id=draft.id)
            return None

    async def _complete(self, draft: Draft, draft_id: str | None) -> Draft:
        """Loop's answer, or the whole draft when it answered only part of it (no id,
        hence no links): read once, best effort (the step stands either way)."""
        if draft.id is not None:
            return draft
        target = draft_id
        if target is None:
            return draft
        try:
            return await self.client.get(target)
        except LoopdeskError as exc:
            log.warning("drafts.read_after_step_failed", draft_id=target, error=exc.code)
            return draft

    async def _refetch(self, draft_id: str) -> Draft | None:
        try:
            return await self.client.get(draft_id)
        except LoopdeskError as exc:
            log.warning("drafts.read_after_refusal_failed", draft_id=draft_id, error=exc.code)
            return None

    async def _status_page(self, return_id: str | None) -> str | None:
        if return_id is None:
            return None
        try:
            details = await self.client.return_details(return_id=return_id)
        except LoopdeskError as exc:
            log.warning("drafts.return_details_failed", return_id=return_id, error=exc.code)
            return None
        return details.status_page_url

    async def _key_known(self, actor: str, idempotency_key: str | None) -> bool:
        if not idempotency_key:
            return False
        async with self.store.reader() as session:
            row = await db.get_idempotency_key(session, actor, idempotency_key)
        return row is not None

    def _check_enabled(self) -> None:
        if not self.enabled():
            raise DraftsDisabled(DISABLED_MESSAGE)


# --- results -------------------------------------------------------------------------


def _succeeded(
    draft: Draft,
    body: dict[str, Any],
    *,
    totals: DraftTotals | None = None,
    status_page_url: str | None = None,
) -> DraftResult:
    return DraftResult(
        ok=True,
        status=200,
        draft=draft,
        body=body,
        totals=totals,
        return_id=draft.return_id,
        status_page_url=status_page_url,
    )


def _failed(exc: LoopdeskError, draft: Draft | None = None) -> DraftResult:
    error = _as_validation_error(exc)
    body = error.to_body()
    details = body["error"]["details"]
    if draft is not None and "nextSteps" not in details:
        details["nextSteps"] = list(next_steps(draft))
    return DraftResult(
        ok=False,
        status=error.http_status,
        draft=draft,
        body=body,
        error_code=error.code,
        loop_errors=_loop_errors(error),
        outcome_unknown=bool(details.get("outcomeUnknown")),
    )


def _from_outcome(outcome: ActionOutcome, held: _Held) -> DraftResult:
    body = outcome.body
    if outcome.ok:
        return_id = body.get("returnId") if isinstance(body.get("returnId"), str) else None
        url = body.get("statusPageUrl") if isinstance(body.get("statusPageUrl"), str) else None
        return DraftResult(
            ok=True,
            status=outcome.status,
            draft=held.draft,
            body=body,
            replayed=outcome.replayed,
            return_id=return_id,
            status_page_url=url,
        )
    error = body.get("error", {})
    details = error.get("details", {})
    return DraftResult(
        ok=False,
        status=outcome.status,
        draft=held.draft,
        body=body,
        error_code=error.get("code"),
        loop_errors=() if held.error is None else _loop_errors(held.error),
        outcome_unknown=bool(details.get("outcomeUnknown")),
        replayed=outcome.replayed,
    )


def _with_draft(result: DraftResult, draft: Draft) -> DraftResult:
    """The result with the draft Loop now has; a failure's details gain its next steps."""
    body = result.body
    if not result.ok and isinstance(body.get("error"), dict):
        error = body["error"]
        details = {**error.get("details", {}), "nextSteps": list(next_steps(draft))}
        details.setdefault("state", draft.state)
        body = {"error": {**error, "details": details}}
    return replace(result, draft=draft, body=body, return_id=result.return_id or draft.return_id)


def _loop_answered(result: DraftResult) -> bool:
    """Loop refused the step itself (a 4xx of its own), as opposed to failing."""
    code = result.error_code or ""
    return code in (LoopValidationError.code, "loop_rejected", "loop_not_found")


def _loop_errors(exc: LoopdeskError) -> tuple[dict[str, Any], ...]:
    if isinstance(exc, LoopValidationError):
        return tuple(exc.errors)
    if isinstance(exc, LoopError) and error_list(exc.body):
        # e.g. 403 `unsupported-feature`: the shop's Loop has not enabled the API.
        return tuple(draft_errors(exc.body))
    return ()


def _as_validation_error(exc: LoopdeskError) -> LoopdeskError:
    """Loop's 422 on a draft (`DraftRejected`) as loopdesk's one code for Loop's
    validation errors, `loop_validation_error`, its `errors` (with Loop's codes) kept."""
    if not isinstance(exc, DraftRejected):
        return exc
    error = LoopValidationError(
        exc.message, errors=exc.errors, status=exc.status, body=exc.body, endpoint=exc.endpoint
    )
    error.details.update({k: v for k, v in exc.details.items() if k != "errors"})
    return error


Call = Callable[[], Awaitable[dict[str, Any]]]


def _worded(call: Call, held: _Held) -> Call:
    """`call` with Loop's 422 in loopdesk's code, and Loop's error kept for the result."""

    async def run() -> dict[str, Any]:
        try:
            return await call()
        except LoopdeskError as exc:
            held.error = _as_validation_error(exc)
            if held.error is exc:
                raise
            raise held.error from exc

    return run


# --- inputs --------------------------------------------------------------------------


def _check_actor(actor: object) -> None:
    if not isinstance(actor, str) or not actor.strip() or len(actor) > MAX_ACTOR:
        raise InvalidInput(f"the actor must be a name of 1 to {MAX_ACTOR} characters")


def _id(value: object, name: str) -> int:
    try:
        return input_id(value, name)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, details={"field": name}) from None


def _choice(value: object, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidInput(
            f"{name} must be one of {', '.join(allowed)}",
            details={"field": name, "allowed": list(allowed)},
        )
    return str(value)


def _text(value: object, name: str, *, max_length: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{name} is required", details={"field": name})
    if len(value) > max_length or any(ord(c) < 0x20 or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise InvalidInput(
            f"{name} must be at most {max_length} printable characters", details={"field": name}
        )
    return value.strip()


def _order_name(draft: Draft, fallback: str) -> str:
    return (draft.order.name if draft.order is not None else None) or fallback


def _parsed(stored: db.StoredDraft) -> Draft | None:
    try:
        return parse_draft(stored.body)
    except InvalidUpstreamData:
        return None
