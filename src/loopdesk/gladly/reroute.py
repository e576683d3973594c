"""Re-routing open Gladly conversations to the inbox of their customer's routing queue.

Three things place a conversation. Gladly's `CONVERSATION/CREATED`, `REOPENED` and
`CONTACT/MESSAGE_RECEIVED` webhooks (`POST /webhooks/gladly`): the event is stored
first, then its customer's addresses are read from Gladly, the customer is routed
(`routing.service.route_customer`, which fetches from Loop when the store is not fresh)
and their standing outcome brought up to date (`Rerouter.reroute`). And loopdesk's own
`routing.changed`: every Gladly conversation keeps the routing outcome it was last
placed by (`gladly_conversations.outcome_at`), so the open conversations (those Gladly
has not told of as `CONVERSATION/CLOSED`, nor was found closed) of a customer
whose outcome has changed since are found in the store by a sweep, which a change wakes
at once (`Rerouter.listeners`) and which also runs every `SWEEP_S` for the changes other
processes made (`loopdesk routing scan`, other workers).

Either way the conversation is placed by the customer's standing outcome (the one
`routing.changed` announces: the rules over the stored facts, no channel or intent), so
a message's channel never moves a conversation back and forth. The outcome's queue maps
to a Gladly inbox (`LOOPDESK_GLADLY_QUEUE_INBOXES`); when the conversation is elsewhere,
it is moved there (`PATCH /conversations/{id}`, `assignee.inboxId`) and a note tells
the agents the rule and the facts. Each move is one audited action (`gladly.move`, key
`gladly`, in `/v1/audit`). A conversation is held (`lease_until`) while it is placed, so
processes sharing the database move it once; a closed one is never moved.

A stored event that cannot be applied now (Gladly or Loop unavailable, the
conversation held elsewhere) stays `received` and is tried again with backoff, up to
`MAX_ATTEMPTS`, across restarts; Gladly gets its 2xx as soon as the event is stored.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any, Literal

import structlog
from pydantic import SecretStr
from sqlalchemy.exc import SQLAlchemyError

from loopdesk import store as db
from loopdesk.actions.run import ActionRunner
from loopdesk.customers.service import CustomerService
from loopdesk.errors import InvalidInput, InvalidUpstreamData, LoopdeskError, LoopUnavailable
from loopdesk.gladly.client import (
    GladlyAuthError,
    GladlyClient,
    GladlyError,
    GladlyNotFound,
    GladlyRateLimited,
    GladlyUnavailable,
)
from loopdesk.routing.events import backoff_s
from loopdesk.routing.reroute import Change, Rerouter
from loopdesk.routing.rules import RuleSet
from loopdesk.routing.service import RoutingConfig, route_customer
from loopdesk.settings import Settings
from loopdesk.store import outbox as ob

log = structlog.get_logger(__name__)

SECRET_HEADER = "X-Loopdesk-Gladly-Secret"  # noqa: S105 - a header name
# Public on purpose, as the sandbox's Loop webhook secret: accepted in sandbox mode only,
# and only when no webhook credential is configured.
SANDBOX_WEBHOOK_SECRET = "sandbox-gladly-secret"  # noqa: S105
PING = "PING"
CONVERSATION_CREATED = "CONVERSATION/CREATED"
CONVERSATION_REOPENED = "CONVERSATION/REOPENED"
CONVERSATION_CLOSED = "CONVERSATION/CLOSED"
MESSAGE_RECEIVED = "CONTACT/MESSAGE_RECEIVED"
# Created, reopened and a new message place the conversation; closed takes it out of
# the sweep (a closed conversation is never moved) until it reopens.
PLACING = (CONVERSATION_CREATED, CONVERSATION_REOPENED, MESSAGE_RECEIVED)
HANDLED = (*PLACING, CONVERSATION_CLOSED)
ACTION = "gladly.move"
ACTOR = "gladly"  # the audit rows' key name
CLOSED = "CLOSED"
# Gladly waits 15 s for an answer: what is not done by then goes on after the 2xx.
ANSWER_WITHIN_S = 8.0
# How long one process holds an event or a conversation it works on.
LEASE_S = 120.0
MAX_ATTEMPTS = 10
RETRY_BASE_S = 5.0
RETRY_MAX_S = 900.0
SWEEP_S = 30.0
POLL_S = 5.0
PAGE = 100
# Facts every note shows, besides those the deciding rule read.
NOTE_FACTS = ("open_return_count", "latest_return_state", "refund_pending_days", "vip")
# Failures a later attempt may not meet.
TRANSIENT = (GladlyUnavailable, GladlyRateLimited, GladlyAuthError, LoopUnavailable)
TRANSIENT_CODES = frozenset(kind.code for kind in TRANSIENT)

Result = Literal["moved", "unchanged", "unmapped", "closed", "no_email", "busy", "failed"]


@dataclass(frozen=True)
class WebhookAuth:
    """What `POST /webhooks/gladly` takes (Gladly signs nothing): Basic credentials,
    a secret header, or both; each one configured must match."""

    user: str | None = None
    password: SecretStr | None = None
    secret: SecretStr | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, sandbox: bool) -> WebhookAuth:
        secret = settings.gladly_webhook_secret
        if secret is not None and not secret.get_secret_value():
            secret = None
        user = settings.gladly_webhook_user or None
        if sandbox and user is None and secret is None:
            secret = SecretStr(SANDBOX_WEBHOOK_SECRET)
        return cls(user, settings.gladly_webhook_password, secret)

    @property
    def configured(self) -> bool:
        return self.user is not None or self.secret is not None

    def headers(self) -> dict[str, str]:
        """What a sender (the simulator) puts on its requests to pass."""
        sent: dict[str, str] = {}
        if self.secret is not None:
            sent[SECRET_HEADER] = self.secret.get_secret_value()
        if self.user is not None:
            pair = f"{self.user}:{self._password()}".encode()
            sent["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        return sent

    def accepts(self, authorization: str | None, secret: str | None) -> bool:
        """Constant-time checks of what a request presents; nothing configured: False."""
        if not self.configured:
            return False
        ok = True
        if self.user is not None:
            expected = f"{self.user}:{self._password()}".encode()
            presented = _basic(authorization)
            ok = presented is not None and hmac.compare_digest(presented, expected)
        if self.secret is not None:
            given = (secret or "").strip().encode()
            ok = hmac.compare_digest(given, self.secret.get_secret_value().encode()) and ok
        return ok

    def _password(self) -> str:
        return self.password.get_secret_value() if self.password else ""


def _basic(header: str | None) -> bytes | None:
    scheme, _, value = (header or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True)
class GladlyConfig:
    """Which inbox each queue maps to, and what the webhook route takes."""

    inboxes: Mapping[str, str]
    auth: WebhookAuth

    @classmethod
    def from_settings(
        cls, settings: Settings, *, sandbox: bool, default_inboxes: Mapping[str, str]
    ) -> GladlyConfig:
        """`sandbox`: the client talks to the simulator, whose inboxes (given) stand in
        for a mapping not configured."""
        inboxes = dict(settings.gladly_queue_inboxes) or (dict(default_inboxes) if sandbox else {})
        return cls(inboxes, WebhookAuth.from_settings(settings, sandbox=sandbox))


@dataclass(frozen=True)
class GladlyEvent:
    """The parts of a Gladly webhook event re-routing reads."""

    id: str
    type: str
    conversation_id: str | None = None
    customer_id: str | None = None
    inbox_id: str | None = None


def parse_event(body: bytes) -> GladlyEvent:
    """A webhook body as Gladly sends it; `InvalidInput` naming what is wrong. The
    handled types need `content.conversationId` and `content.customerId`."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("the body is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("a Gladly event is a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str) or not kind.strip():
        raise InvalidInput("`type` is required", details={"field": "type"})
    kind = kind.strip()
    event_id = data.get("id")
    event_id = str(event_id) if isinstance(event_id, str | int) and str(event_id) else ""
    if kind not in HANDLED:
        return GladlyEvent(event_id, kind)
    if not event_id or len(event_id) > 128:
        raise InvalidInput("`id` is required (at most 128 characters)", details={"field": "id"})
    content = data.get("content")
    content = content if isinstance(content, dict) else {}
    found: dict[str, str] = {}
    for name in ("conversationId", "customerId"):
        value = content.get(name)
        if not isinstance(value, str) or not value.strip() or len(value) > 128:
            raise InvalidInput(
                f"`content.{name}` is required (at most 128 characters)",
                details={"field": f"content.{name}"},
            )
        found[name] = value.strip()
    context = content.get("context")
    assignee = context.get("assignee") if isinstance(context, dict) else None
    inbox = assignee.get("inboxId") if isinstance(assignee, dict) else None
    return GladlyEvent(
        event_id,
        kind,
        conversation_id=found["conversationId"],
        customer_id=found["customerId"],
        inbox_id=inbox if isinstance(inbox, str) and inbox else None,
    )


@dataclass(frozen=True)
class Placement:
    """What placing one conversation did."""

    conversation_id: str
    result: Result
    queue: str | None = None
    rule: str | None = None
    from_inbox: str | None = None
    to_inbox: str | None = None
    error: str | None = None  # the failure's code, when `failed`
    transient: bool = False  # a later attempt may succeed

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"conversationId": self.conversation_id, "result": self.result}
        for key, value in (
            ("queue", self.queue),
            ("rule", self.rule),
            ("fromInboxId", self.from_inbox),
            ("toInboxId", self.to_inbox),
            ("error", self.error),
        ):
            if value is not None:
                body[key] = value
        return body


@dataclass(frozen=True)
class Received:
    """The webhook's answer: what was done with the event."""

    type: str
    event_id: int | None
    result: str


def note_text(outcome: ob.OutcomeRow, rules: RuleSet) -> str:
    """The note the agents read: where and why, with the facts the rule read."""
    rule = next((r for r in rules.rules if r.name == outcome.rule), None)
    why = f" {rule.note}" if rule is not None and rule.note else ""
    names = [*(rule.reads if rule is not None else ()), *NOTE_FACTS]
    shown = [
        f"{name} = {_fact(outcome.facts[name])}"
        for name in dict.fromkeys(names)
        if name in outcome.facts
    ]
    facts = f" Facts: {', '.join(shown)}." if shown else ""
    return (
        f"loopdesk moved this conversation to the inbox of queue {outcome.queue} "
        f"(rule {outcome.rule}, priority {outcome.priority}).{why}{facts}"
    )


def _fact(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


@dataclass
class GladlyRerouter:
    """The service: webhook events in, conversations placed, moves audited."""

    client: GladlyClient
    config: GladlyConfig
    routing: RoutingConfig
    customers: CustomerService
    rerouter: Rerouter
    actions: ActionRunner
    store: db.Store
    rng: Random = field(default_factory=Random)
    # Set by a routing change: the sweep runs at once.
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: set[asyncio.Task[str]] = field(default_factory=set)

    def changed(self, change: Change) -> None:
        """`Rerouter.listeners` hook: a customer's outcome changed (it is committed)."""
        self.wake.set()

    async def settled(self) -> None:
        """Wait until the events still being applied after their answer are done."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    # --- webhook events ---------------------------------------------------------------

    async def receive(self, body: bytes, *, now: datetime | None = None) -> Received:
        """Store an event, then apply it if that takes less than `ANSWER_WITHIN_S`
        (else it goes on after the answer). `InvalidInput` for a body that is not a
        Gladly event; `GladlyWebhookDeferred` when it cannot be stored."""
        event = parse_event(body)
        if event.type == PING:
            return Received(PING, None, "pong")
        if event.type not in HANDLED:
            log.info("gladly.event_ignored", type=event.type[:64])
            return Received(event.type[:64], None, "ignored")
        moment = now or datetime.now(UTC)
        try:
            async with self.store.session() as session:
                row_id, new = await db.record_gladly_event(
                    session,
                    event_id=event.id,
                    type=event.type,
                    conversation_id=event.conversation_id,
                    body=body,
                    at=moment,
                    claim_until=moment + timedelta(seconds=LEASE_S),
                )
        except SQLAlchemyError as exc:
            log.warning("gladly.event_store_failed", error=type(exc).__name__)
            raise GladlyWebhookDeferred("the event could not be stored; send it again") from None
        if not new:
            return Received(event.type, row_id, "duplicate")
        task = asyncio.get_running_loop().create_task(self._apply(row_id, event, attempts=1))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            result = await asyncio.wait_for(asyncio.shield(task), ANSWER_WITHIN_S)
        except TimeoutError:
            result = "queued"
        return Received(event.type, row_id, result)

    async def retry_due(self, now: datetime | None = None) -> int:
        """Apply the stored events left `received` whose next attempt is due (a crash,
        an outage, a conversation held elsewhere); how many were tried."""
        moment = now or datetime.now(UTC)
        async with self.store.reader() as session:
            rows = await db.due_gladly_events(session, moment, limit=PAGE)
        tried = 0
        for row in rows:
            async with self.store.session() as session:
                claimed = await db.claim_gladly_event(
                    session, row, until=moment + timedelta(seconds=LEASE_S)
                )
            if not claimed:
                continue
            tried += 1
            try:
                event = parse_event(row.body)
            except InvalidInput as exc:  # stored by an older version, say
                await self._settle(row.id, "failed", None, error=exc.message)
                continue
            await self._apply(row.id, event, attempts=row.attempts + 1)
        return tried

    async def _apply(self, row_id: int, event: GladlyEvent, *, attempts: int) -> str:
        """Apply one stored event and settle its row; the result. Never raises."""
        assert event.conversation_id is not None and event.customer_id is not None
        try:
            if event.type == CONVERSATION_CLOSED:
                placement = await self.on_closed(event.conversation_id)
            else:
                placement = await self.on_conversation(
                    event.conversation_id,
                    event.customer_id,
                    inbox_id=event.inbox_id,
                    cause=event.type,
                )
        except Exception as exc:
            transient = isinstance(exc, (*TRANSIENT, SQLAlchemyError))
            reason = exc.code if isinstance(exc, LoopdeskError) else type(exc).__name__
            if not isinstance(exc, LoopdeskError | SQLAlchemyError):
                log.exception("gladly.event_failed", event_id=row_id)
            placement = Placement(
                event.conversation_id, "failed", error=reason, transient=transient
            )
        if (placement.result == "busy" or placement.transient) and attempts < MAX_ATTEMPTS:
            wait = backoff_s(attempts, RETRY_BASE_S, RETRY_MAX_S, self.rng)
            at = datetime.now(UTC) + timedelta(seconds=wait)
            with contextlib.suppress(SQLAlchemyError):  # else tried again after its lease
                async with self.store.session() as session:
                    await db.retry_gladly_event(
                        session, row_id, at=at, error=placement.error or placement.result
                    )
            log.info("gladly.event_deferred", event_id=row_id, reason=placement.error)
            return "deferred"
        status = "failed" if placement.result == "failed" else "applied"
        await self._settle(row_id, status, placement.result, error=placement.error)
        return placement.result

    async def _settle(
        self, row_id: int, status: str, result: str | None, *, error: str | None
    ) -> None:
        try:
            async with self.store.session() as session:
                await db.finish_gladly_event(
                    session, row_id, status=status, result=result, at=datetime.now(UTC), error=error
                )
        except SQLAlchemyError as exc:  # left `received`: tried again after its lease
            log.warning("gladly.event_settle_failed", event_id=row_id, error=type(exc).__name__)

    # --- placing conversations --------------------------------------------------------

    async def on_closed(self, conversation_id: str) -> Placement:
        """Gladly closed the conversation: the sweep leaves it until it reopens."""
        async with self.store.session() as session:
            await db.close_gladly_conversation(session, conversation_id, at=datetime.now(UTC))
        return Placement(conversation_id, "closed")

    async def on_conversation(
        self,
        conversation_id: str,
        gladly_customer_id: str,
        *,
        inbox_id: str | None = None,
        cause: str = CONVERSATION_CREATED,
    ) -> Placement:
        """A conversation Gladly told of: route its customer, then place it."""
        moment = datetime.now(UTC)
        async with self.store.reader() as session:
            known = await db.get_gladly_conversation(session, conversation_id)
        if known is not None and known.gladly_customer_id == gladly_customer_id and known.emails:
            emails = list(known.emails)
        else:
            profile = await self.client.customer(gladly_customer_id)
            # A merged profile is read through to its survivor, whose id is kept.
            gladly_customer_id, emails = profile.id, list(profile.emails)
        if not emails:
            async with self.store.session() as session:
                await db.save_gladly_conversation(
                    session,
                    conversation_id,
                    gladly_customer_id=gladly_customer_id,
                    emails=[],
                    inbox_id=inbox_id,
                    status="OPEN",
                    at=moment,
                )
            return Placement(conversation_id, "no_email")
        routed = await route_customer(self.routing, self.customers, self.store, emails)
        # The standing outcome, baseline or change, is what places the conversation;
        # it is read from the store, so what the lookup fetched must be there first.
        await self.customers.written(routed.emails)
        await self.rerouter.reroute(routed.emails, cause="refresh")
        async with self.store.session() as session:
            row = await db.save_gladly_conversation(
                session,
                conversation_id,
                gladly_customer_id=gladly_customer_id,
                emails=routed.emails,
                inbox_id=inbox_id,
                status="OPEN",  # a message reopens a closed conversation
                at=moment,
            )
            outcome = await ob.get_outcome(session, row.customer)
        if outcome is None:  # no address usable for routing
            return Placement(conversation_id, "no_email")
        return await self.place(conversation_id, outcome, cause=cause)

    async def place(self, conversation_id: str, outcome: ob.OutcomeRow, *, cause: str) -> Placement:
        """Move the conversation to the inbox of the outcome's queue unless it is there
        (or closed, or the queue has no inbox), under the conversation's lease."""
        now = datetime.now(UTC)
        async with self.store.session() as session:
            held = await db.lease_gladly_conversation(
                session, conversation_id, now=now, until=now + timedelta(seconds=LEASE_S)
            )
        if not held:
            return Placement(conversation_id, "busy", outcome.queue, outcome.rule, transient=True)
        release: dict[str, Any] = {}
        try:
            placement, release = await self._place(conversation_id, outcome, cause)
        finally:
            async with self.store.session() as session:
                await db.release_gladly_conversation(
                    session, conversation_id, at=datetime.now(UTC), **release
                )
        log.info(
            "gladly.placed",
            conversation_id=conversation_id,
            result=placement.result,
            queue=outcome.queue,
            rule=outcome.rule,
            cause=cause,
        )
        return placement

    async def _place(
        self, conversation_id: str, outcome: ob.OutcomeRow, cause: str
    ) -> tuple[Placement, dict[str, Any]]:
        """The placement, and what the conversation's row says after it."""
        placed_by = {"outcome_at": outcome.decided_at}
        try:
            conversation = await self.client.conversation(conversation_id)
        except GladlyNotFound:
            # Gone from Gladly (deleted, merged away): never looked at again.
            return Placement(conversation_id, "closed", outcome.queue, outcome.rule), {
                "status": CLOSED
            }
        seen = {"inbox_id": conversation.inbox_id, "status": conversation.status}
        base = Placement(
            conversation_id,
            "unchanged",
            outcome.queue,
            outcome.rule,
            from_inbox=conversation.inbox_id,
            to_inbox=self.config.inboxes.get(outcome.queue),
        )
        if not conversation.open:
            return _with(base, "closed"), {**seen, **placed_by}
        target = base.to_inbox
        if target is None:
            return _with(base, "unmapped"), {**seen, **placed_by}
        if conversation.inbox_id == target:
            return base, {**seen, **placed_by}
        note = note_text(outcome, self.routing.rules)

        async def call() -> dict[str, Any]:
            await self.client.assign_inbox(conversation_id, target)
            answer: dict[str, Any] = {
                "conversationId": conversation_id,
                "inboxId": target,
                "moved": True,
                "note": True,
            }
            try:
                await self.client.add_note(conversation_id, note)
            except (GladlyError, InvalidUpstreamData) as exc:
                # The move stands; the audit row says the note is missing.
                answer["note"] = False
                answer["noteError"] = exc.code
            return answer

        inputs = {
            "conversationId": conversation_id,
            "customerId": conversation.customer_id,
            "fromInboxId": conversation.inbox_id,
            "toInboxId": target,
            "queue": outcome.queue,
            "rule": outcome.rule,
            "cause": cause,
        }
        done = await self.actions.run(ACTION, inputs, call, key_name=ACTOR)
        if done.ok:
            return _with(base, "moved"), {
                "inbox_id": target,
                "status": conversation.status,
                **placed_by,
            }
        code = str(done.body.get("error", {}).get("code", "internal_error"))
        transient = code in TRANSIENT_CODES
        failed = Placement(
            conversation_id,
            "failed",
            outcome.queue,
            outcome.rule,
            from_inbox=conversation.inbox_id,
            to_inbox=target,
            error=code,
            transient=transient,
        )
        # A refusal (a closed conversation, an unknown inbox) is not tried again for
        # this outcome; an outage is, by the sweep.
        return failed, (seen if transient else {**seen, **placed_by})

    # --- routing.changed --------------------------------------------------------------

    async def sweep(self, now: datetime | None = None) -> list[Placement]:
        """Place every open conversation whose customer's outcome changed since it was
        last placed (or that was never placed)."""
        moment = now or datetime.now(UTC)
        placements: list[Placement] = []
        after = ""
        while True:
            async with self.store.reader() as session:
                page = await db.gladly_conversations_to_check(
                    session, now=moment, after=after, limit=PAGE
                )
            if not page:
                break
            for row, _ in page:
                after = row.id
                async with self.store.reader() as session:
                    outcome = await ob.get_outcome(session, row.customer)
                if outcome is None:
                    continue
                try:
                    placements.append(await self.place(row.id, outcome, cause="routing.changed"))
                except (LoopdeskError, SQLAlchemyError) as exc:
                    # Its mark is unchanged: the next sweep tries again.
                    log.warning(
                        "gladly.sweep_failed", conversation_id=row.id, error=type(exc).__name__
                    )
        return placements

    async def run_periodic(self, *, interval_s: float = SWEEP_S) -> None:
        """Until cancelled: events due again are applied; the sweep runs when a change
        wakes it and every `interval_s`."""
        next_sweep = time.monotonic()
        while True:
            woken = self.wake.is_set()
            self.wake.clear()
            await _safely("retry", self.retry_due())
            if woken or time.monotonic() >= next_sweep:
                await _safely("sweep", self.sweep())
                next_sweep = time.monotonic() + interval_s
            wait = max(0.01, min(POLL_S, next_sweep - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), wait)


class GladlyWebhookDeferred(LoopdeskError):
    """The event could not be stored (the database is down): Gladly sends it again."""

    code = "webhook_deferred"
    http_status = 503


def _with(placement: Placement, result: Result) -> Placement:
    return Placement(
        placement.conversation_id,
        result,
        placement.queue,
        placement.rule,
        placement.from_inbox,
        placement.to_inbox,
    )


async def _safely(step: str, work: Awaitable[object]) -> None:
    try:
        await work
    except Exception as exc:  # the next round tries again
        log.warning("gladly.periodic_failed", step=step, error=type(exc).__name__)
