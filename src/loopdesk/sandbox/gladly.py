"""A Gladly simulator: the few REST endpoints re-routing uses, its webhooks, its limit.

REST under `/gladly/api/v1` (HTTP Basic: the API user's email and token):
`GET`/`PATCH /conversations/{id}`, `POST /conversations/{id}/notes`,
`GET /conversations/{id}/items`, `GET /customer-profiles/{id}`, `GET /inboxes`, with
Gladly's error shape (`{"errors": [{"attr", "code", "detail"}]}`). Like Gladly it
allows 10 requests in any second per API user (all methods together, as loopdesk
counts them) and answers 429 beyond, with `Retry-After`. Every API request is logged
(`requests`) for tests and the demo.

Webhooks go where `configure` (or `POST /_sandbox/gladly/webhooks`) says, with its
Basic credentials and static headers, Gladly-shaped (`id`, `type`, `timestamp`,
`initiator`, `content` of ids only), retried as Gladly retries (30 s, 5 min, 30 min,
1 h; scaled in tests). Control routes, under `/_sandbox/gladly/`, open a conversation
(`CONVERSATION/CREATED`), write a customer message (`CONTACT/MESSAGE_RECEIVED`), set
the webhook (answered by a `PING`, as Gladly does when a webhook is saved) and show the
log; mounted in `serve`, they take an API key like every `/_sandbox/` route.

The sandbox's API credentials are public on purpose (`SANDBOX_API_USER`,
`SANDBOX_API_TOKEN`): the simulator accepts the configured `LOOPDESK_GLADLY_API_USER`
and `_TOKEN` instead when they are set.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from loopdesk.sandbox.ratelimit import RollingLimiter
from loopdesk.sandbox.responses import json_body, json_response, retry_after_header
from loopdesk.sandbox.world import utcnow
from loopdesk.settings import Settings

PREFIX = "/gladly"
API_PREFIX = PREFIX + "/api/v1"
CONTROL_PREFIX = "/_sandbox/gladly"
SANDBOX_API_USER = "api@sandbox.gladly.invalid"
SANDBOX_API_TOKEN = "sandbox-gladly-token"  # noqa: S105 - public on purpose
RATE_PER_S = 10
# When Gladly retries a webhook that got no 2xx within 15 s; after the last it
# deactivates the webhook.
RETRY_DELAYS_S = (30.0, 300.0, 1800.0, 3600.0)
WEBHOOK_TIMEOUT_S = 15.0
MAX_LOG = 5000
CHANNELS = ("CHAT", "EMAIL", "SMS", "FB_MESSENGER", "INSTAGRAM_DIRECT", "VOICEMAIL", "WHATSAPP")
# One inbox per queue of the default routing rules.
INBOXES = {
    "general": "General",
    "returns": "Returns",
    "returns-priority": "Returns priority",
    "orders": "Orders",
}

log = logging.getLogger(__name__)


def gladly_id(seed: str) -> str:
    """A stable id in Gladly's style: 22 characters of URL-safe base64."""
    digest = hashlib.sha256(seed.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def inbox_id(queue: str) -> str:
    return gladly_id(f"inbox:{queue}")


def sandbox_queue_inboxes() -> dict[str, str]:
    """The simulator's inbox of each default queue: the mapping sandbox mode uses."""
    return {queue: inbox_id(queue) for queue in INBOXES}


@dataclass(frozen=True)
class Logged:
    """One API request as the simulator saw it."""

    method: str
    path: str  # under /api/v1
    body: Any
    status: int
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "body": self.body,
            "status": self.status,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True)
class Delivery:
    type: str
    event_id: str
    status: int  # 0: no answer


@dataclass
class WebhookTarget:
    url: str
    user: str | None = None
    password: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    client: httpx.AsyncClient | None = None
    retry_delays: tuple[float, ...] = RETRY_DELAYS_S
    active: bool = True

    def request_headers(self) -> dict[str, str]:
        sent = {"Content-Type": "application/json", **self.headers}
        if self.user is not None:
            pair = f"{self.user}:{self.password or ''}".encode()
            sent["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        return sent


class GladlySimulator:
    """The simulated organisation: inboxes, customers, conversations, notes, the log."""

    def __init__(self, *, user: str, token: str, rate_per_s: int = RATE_PER_S) -> None:
        self.user = user
        self.token = token
        self.limiter = RollingLimiter(rate_per_s, window_s=1.0, retry_after=True)
        self.inboxes = {inbox_id(q): name for q, name in INBOXES.items()}
        self.customers: dict[str, dict[str, Any]] = {}
        # A merged-away profile id -> the id it was merged into (Gladly answers 301).
        self.merged: dict[str, str] = {}
        self.conversations: dict[str, dict[str, Any]] = {}
        self.items: dict[str, list[dict[str, Any]]] = {}
        self.log: deque[Logged] = deque(maxlen=MAX_LOG)
        self.deliveries: deque[Delivery] = deque(maxlen=MAX_LOG)
        self.webhook: WebhookTarget | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # --- the organisation ------------------------------------------------------------

    def customer_for(self, email: str, name: str = "") -> dict[str, Any]:
        """The profile holding `email` (made on first use, as a lookup would link it)."""
        address = email.strip()
        wanted = address.lower()
        for profile in self.customers.values():
            if any(e["normalized"] == wanted for e in profile["emails"]):
                return profile
        profile = {
            "id": gladly_id(f"customer:{wanted}"),
            "name": name or address.split("@")[0],
            "emails": [{"original": address, "normalized": wanted, "primary": True}],
            "phones": [],
            "customAttributes": {},
            "createdAt": _stamp(utcnow()),
            "updatedAt": _stamp(utcnow()),
        }
        self.customers[profile["id"]] = profile
        return profile

    def merge(self, old_id: str, into_id: str) -> None:
        """Merge profile `old_id` into `into_id`, as an agent merging two profiles does:
        its addresses and conversations move to the survivor, and reading the old id
        answers 301 with `meta: {old, new}`."""
        old = self.customers.pop(old_id)
        survivor = self.customers[into_id]
        known = {e["normalized"] for e in survivor["emails"]}
        for email in old["emails"]:
            if email["normalized"] not in known:
                survivor["emails"].append({**email, "primary": False})
        survivor["updatedAt"] = _stamp(utcnow())
        for conversation in self.conversations.values():
            if conversation["customerId"] == old_id:
                conversation["customerId"] = into_id
        for merged_away, into in list(self.merged.items()):
            if into == old_id:
                self.merged[merged_away] = into_id
        self.merged[old_id] = into_id

    def close(self, conversation_id: str) -> dict[str, Any]:
        """Close a conversation, as an agent does."""
        conversation = self.conversations[conversation_id]
        conversation["status"] = "CLOSED"
        conversation["closedAt"] = _stamp(utcnow())
        return conversation

    def open_conversation(
        self, email: str, *, inbox: str | None = None, channel: str = "CHAT", text: str = ""
    ) -> dict[str, Any]:
        """A new conversation of the customer holding `email`, in `inbox` (an inbox id,
        or a queue of `INBOXES`; default: General), with the customer's first message."""
        profile = self.customer_for(email)
        chosen = inbox_id(inbox) if inbox in INBOXES else (inbox or inbox_id("general"))
        conversation = {
            "id": uuid.uuid4().hex[:22],
            "customerId": profile["id"],
            "inboxId": chosen,
            "status": "OPEN",
            "createdAt": _stamp(utcnow()),
            "channel": channel,
        }
        self.conversations[conversation["id"]] = conversation
        self.items[conversation["id"]] = []
        self.message(conversation["id"], text or "Hello, where is my refund?")
        return conversation

    def message(self, conversation_id: str, text: str) -> dict[str, Any]:
        """A customer message on the conversation's channel (reopens a closed one)."""
        conversation = self.conversations[conversation_id]
        conversation["status"] = "OPEN"
        conversation.pop("closedAt", None)
        kind = "CHAT_MESSAGE" if conversation["channel"] == "CHAT" else conversation["channel"]
        item = self.add_item(
            conversation,
            {"type": kind, "content": text},
            {"id": conversation["customerId"], "type": "CUSTOMER"},
        )
        return item

    def notes(self, conversation_id: str) -> list[str]:
        """The bodies of the notes on a conversation, oldest first."""
        return [
            item["content"]["body"]
            for item in self.items.get(conversation_id, [])
            if item["content"]["type"] == "CONVERSATION_NOTE"
        ]

    def requests(self, method: str | None = None, path_contains: str = "") -> list[Logged]:
        return [
            r
            for r in self.log
            if (method is None or r.method == method) and path_contains in r.path
        ]

    def add_item(
        self, conversation: dict[str, Any], content: dict[str, Any], initiator: dict[str, str]
    ) -> dict[str, Any]:
        item = {
            "id": uuid.uuid4().hex[:22],
            "customerId": conversation["customerId"],
            "conversationId": conversation["id"],
            "timestamp": _stamp(utcnow()),
            "initiator": initiator,
            "content": content,
        }
        self.items[conversation["id"]].append(item)
        return item

    # --- webhooks --------------------------------------------------------------------

    def configure(
        self,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        headers: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS_S,
    ) -> WebhookTarget:
        """Send webhooks to `url` with these credentials (replaces any target)."""
        self.webhook = WebhookTarget(
            url, user, password, dict(headers or {}), client, tuple(retry_delays)
        )
        return self.webhook

    def event(self, type: str, content: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A webhook body as Gladly sends it."""
        return {
            "id": gladly_id(f"event:{uuid.uuid4().hex}"),
            "type": type,
            "timestamp": _stamp(utcnow()),
            "initiator": {"id": gladly_id("system"), "type": "SYSTEM"},
            "content": dict(content or {}),
        }

    def conversation_created(self, conversation: Mapping[str, Any]) -> dict[str, Any]:
        return self.conversation_event("CONVERSATION/CREATED", conversation)

    def conversation_event(self, type: str, conversation: Mapping[str, Any]) -> dict[str, Any]:
        """`CONVERSATION/CREATED`, `CLOSED` or `REOPENED`: they share one content."""
        return self.event(
            type,
            {
                "customerId": conversation["customerId"],
                "conversationId": conversation["id"],
                "context": {"assignee": {"inboxId": conversation["inboxId"]}},
            },
        )

    def message_received(
        self, conversation: Mapping[str, Any], item: Mapping[str, Any]
    ) -> dict[str, Any]:
        return self.event(
            "CONTACT/MESSAGE_RECEIVED",
            {
                "channel": conversation["channel"],
                "contactId": gladly_id(f"contact:{conversation['id']}"),
                "conversationId": conversation["id"],
                "customerId": conversation["customerId"],
                "messageId": item["id"],
                "context": {"assignee": {"inboxId": conversation.get("inboxId")}},
            },
        )

    async def send(self, event: Mapping[str, Any], *, retry: bool = True) -> int:
        """POST one event to the target, retried as Gladly does until a 2xx (`retry`):
        the last status (0: no answer; no target: 0)."""
        target = self.webhook
        if target is None or not target.active:
            return 0
        body = json.dumps(event, separators=(",", ":")).encode()
        delays = target.retry_delays if retry else ()
        status = 0
        for attempt in range(len(delays) + 1):
            if attempt:
                await asyncio.sleep(delays[attempt - 1])
            status = await self._post(target, body)
            if 200 <= status < 300:
                break
        else:
            if retry:
                target.active = False  # as Gladly deactivates it, and emails its admins
        self.deliveries.append(Delivery(str(event.get("type")), str(event.get("id")), status))
        return status

    def spawn(self, *events: Mapping[str, Any]) -> None:
        """Send `events` in order, in the background (a control route's answer is never
        held up by the receiver)."""
        task = asyncio.get_running_loop().create_task(self._send_all(events))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drained(self) -> None:
        """Wait until every send started so far (and any started meanwhile) has ended."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _send_all(self, events: Sequence[Mapping[str, Any]]) -> None:
        for event in events:
            try:
                await self.send(event)
            except Exception:  # nobody awaits this task: a bug must show
                log.exception("sandbox Gladly webhook %s failed", event.get("type"))

    async def _post(self, target: WebhookTarget, body: bytes) -> int:
        headers = target.request_headers()
        try:
            if target.client is not None:
                response = await target.client.post(target.url, content=body, headers=headers)
            else:
                async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_S) as client:
                    response = await client.post(target.url, content=body, headers=headers)
        except httpx.HTTPError:
            return 0
        return response.status_code

    # --- the API's door --------------------------------------------------------------

    def authorized(self, header: str | None) -> str | None:
        """The API user a Basic `Authorization` value names, when its token is right."""
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, token = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        expected = f"{self.user}:{self.token}".encode()
        if not sep or not hmac.compare_digest(f"{user}:{token}".encode(), expected):
            return None
        return user


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _errors(status: int, code: str, detail: str, attr: str | None = None) -> Response:
    error = {"code": code, "detail": detail}
    if attr:
        error["attr"] = attr
    return json_response({"errors": [error]}, status)


def _sim(request: Request) -> GladlySimulator:
    simulator: GladlySimulator = request.app.state.gladly
    return simulator


Handler = Callable[[Request, GladlySimulator], Awaitable[Response]]


def _api(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Auth, then the rate limit, then the handler; every request logged."""

    async def route(request: Request) -> Response:
        simulator = _sim(request)
        ok, body = await json_body(request)
        path = request.url.path.split(API_PREFIX, 1)[-1]
        user = simulator.authorized(request.headers.get("authorization"))
        if user is None:
            response = _errors(401, "unauthorized", "invalid or missing API credentials")
        else:
            wait = simulator.limiter.hit(user)
            if wait is not None:
                response = json_response(
                    {"errors": [{"code": "rate_limited", "detail": "too many requests"}]},
                    429,
                    headers={
                        "Retry-After": retry_after_header(max(1, math.ceil(wait))),
                        "Ratelimit-Limit-Second": str(simulator.limiter.per_window),
                        "Ratelimit-Remaining-Second": "0",
                    },
                )
            else:
                response = await handler(request, simulator)
        simulator.log.append(
            Logged(request.method, path, body if ok else None, response.status_code, utcnow())
        )
        return response

    return route


def _conversation_or_404(request: Request, simulator: GladlySimulator) -> dict[str, Any] | Response:
    found = simulator.conversations.get(request.path_params["conversation_id"])
    if found is None:
        return _errors(404, "not_exist", "conversation does not exist")
    return found


async def get_conversation(request: Request, simulator: GladlySimulator) -> Response:
    found = _conversation_or_404(request, simulator)
    if isinstance(found, Response):
        return found
    return json_response({k: v for k, v in found.items() if k != "channel"})


async def patch_conversation(request: Request, simulator: GladlySimulator) -> Response:
    found = _conversation_or_404(request, simulator)
    if isinstance(found, Response):
        return found
    ok, body = await json_body(request)
    if not ok or not isinstance(body, dict):
        return _errors(400, "invalid", "the body is not a JSON object")
    assignee, status = body.get("assignee"), body.get("status")
    if assignee is None and status is None:
        return _errors(400, "blank", "assignee or status is required", "assignee")
    if assignee is not None:
        target = assignee.get("inboxId") if isinstance(assignee, dict) else None
        if not isinstance(target, str) or not target:
            return _errors(400, "blank", "inboxId is required", "assignee.inboxId")
        if target not in simulator.inboxes:
            return _errors(400, "not_exist", "inbox does not exist", "assignee.inboxId")
        if found["status"] == "CLOSED":
            return _errors(400, "invalid_state", "closed conversation cannot be reassigned")
        found["inboxId"] = target
        agent = assignee.get("agentId")
        if agent:
            found["agentId"] = str(agent)
        else:
            found.pop("agentId", None)  # to the inbox's queue
    if isinstance(status, dict) and status.get("value") in ("OPEN", "CLOSED"):
        found["status"] = status["value"]
        if status["value"] == "CLOSED":
            found["closedAt"] = _stamp(utcnow())
    return Response(status_code=204)


async def add_note(request: Request, simulator: GladlySimulator) -> Response:
    found = _conversation_or_404(request, simulator)
    if isinstance(found, Response):
        return found
    ok, body = await json_body(request)
    content = body.get("content") if ok and isinstance(body, dict) else None
    text = content.get("body") if isinstance(content, dict) else None
    if not isinstance(text, str) or not text.strip():
        return _errors(400, "blank", "the note's body is required", "content.body")
    item = simulator.add_item(
        found,
        {"type": "CONVERSATION_NOTE", "body": text},
        {"id": gladly_id(f"api:{simulator.user}"), "type": "API"},
    )
    return json_response(item, 201)


async def list_items(request: Request, simulator: GladlySimulator) -> Response:
    found = _conversation_or_404(request, simulator)
    if isinstance(found, Response):
        return found
    return json_response(simulator.items.get(found["id"], []))


async def get_customer(request: Request, simulator: GladlySimulator) -> Response:
    wanted = request.path_params["customer_id"]
    merged_into = simulator.merged.get(wanted)
    if merged_into is not None:
        return json_response(
            {"meta": {"old": wanted, "new": merged_into}},
            301,
            headers={"Location": f"{API_PREFIX}/customer-profiles/{merged_into}"},
        )
    found = simulator.customers.get(wanted)
    if found is None:
        return _errors(404, "not_exist", "customer does not exist")
    return json_response(found)


async def list_inboxes(request: Request, simulator: GladlySimulator) -> Response:
    return json_response(
        [{"id": i, "name": name, "disabled": False} for i, name in simulator.inboxes.items()]
    )


# --- control routes ---------------------------------------------------------------------


def _text_field(body: Any, name: str) -> str | None:
    value = body.get(name) if isinstance(body, dict) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


async def control_open(request: Request) -> Response:
    """`{"email", "inbox"?, "channel"?, "text"?}`: a new conversation; its
    CONVERSATION/CREATED and CONTACT/MESSAGE_RECEIVED are sent."""
    simulator = _sim(request)
    ok, body = await json_body(request)
    email = _text_field(body, "email")
    if not ok or email is None or "@" not in email:
        return json_response({"message": "email: an email address is required"}, 422)
    channel = (_text_field(body, "channel") or "CHAT").upper()
    if channel not in CHANNELS:
        return json_response({"message": f"channel: one of {', '.join(CHANNELS)}"}, 422)
    inbox = _text_field(body, "inbox")
    if inbox is not None and inbox not in INBOXES and inbox not in simulator.inboxes:
        return json_response({"message": "inbox: a queue name or an inbox id"}, 422)
    conversation = simulator.open_conversation(
        email, inbox=inbox, channel=channel, text=_text_field(body, "text") or ""
    )
    first = simulator.items[conversation["id"]][-1]
    simulator.spawn(
        simulator.conversation_created(conversation),
        simulator.message_received(conversation, first),
    )
    return json_response(conversation, 201)


async def control_message(request: Request) -> Response:
    """`{"text"}`: the customer writes again; CONTACT/MESSAGE_RECEIVED is sent."""
    simulator = _sim(request)
    conversation = simulator.conversations.get(request.path_params["conversation_id"])
    if conversation is None:
        return json_response({"message": "no conversation with this id"}, 404)
    _, body = await json_body(request)
    item = simulator.message(conversation["id"], _text_field(body, "text") or "Any news?")
    simulator.spawn(simulator.message_received(conversation, item))
    return json_response(item, 201)


async def control_conversation(request: Request) -> Response:
    """A conversation with its timeline (messages and notes), for the demo."""
    simulator = _sim(request)
    conversation = simulator.conversations.get(request.path_params["conversation_id"])
    if conversation is None:
        return json_response({"message": "no conversation with this id"}, 404)
    inbox = simulator.inboxes.get(str(conversation.get("inboxId")))
    return json_response(
        {**conversation, "inboxName": inbox, "items": simulator.items[conversation["id"]]}
    )


async def control_set_webhook(request: Request) -> Response:
    """`{"url", "user"?, "password"?, "headers"?}`: where webhooks go; saved only when
    the URL answers the PING with 200, as in Gladly."""
    simulator = _sim(request)
    ok, body = await json_body(request)
    url = _text_field(body, "url")
    if not ok or url is None or not url.startswith(("http://", "https://")):
        return json_response({"message": "url: an http(s) URL is required"}, 422)
    headers = body.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        return json_response({"message": "headers: an object of strings"}, 422)
    previous = simulator.webhook
    target = simulator.configure(
        url, user=_text_field(body, "user"), password=body.get("password"), headers=headers
    )
    status = await simulator.send(simulator.event("PING"), retry=False)
    if status != 200:
        simulator.webhook = previous
        answered = f"the URL answered the PING with {status or 'nothing'}"
        return json_response({"message": answered}, 422)
    return json_response({"url": target.url, "ping": status}, 201)


async def control_clear_webhook(request: Request) -> Response:
    simulator = _sim(request)
    cleared = simulator.webhook is not None
    simulator.webhook = None
    return json_response({"cleared": cleared})


async def control_requests(request: Request) -> Response:
    return json_response([r.to_json() for r in _sim(request).log])


async def control_clear_requests(request: Request) -> Response:
    _sim(request).log.clear()
    return json_response({"cleared": True})


_API_ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/conversations/{conversation_id}", get_conversation),
    ("PATCH", "/conversations/{conversation_id}", patch_conversation),
    ("POST", "/conversations/{conversation_id}/notes", add_note),
    ("GET", "/conversations/{conversation_id}/items", list_items),
    ("GET", "/customer-profiles/{customer_id}", get_customer),
    ("GET", "/inboxes", list_inboxes),
)
_CONTROL_ROUTES: tuple[tuple[str, str, Callable[[Request], Awaitable[Response]]], ...] = (
    ("POST", "/conversations", control_open),
    ("GET", "/conversations/{conversation_id}", control_conversation),
    ("POST", "/conversations/{conversation_id}/messages", control_message),
    ("POST", "/webhooks", control_set_webhook),
    ("DELETE", "/webhooks", control_clear_webhook),
    ("GET", "/requests", control_requests),
    ("DELETE", "/requests", control_clear_requests),
)


def install(app: FastAPI, settings: Settings) -> GladlySimulator:
    """Add the simulator to a sandbox app (`app.state.gladly`)."""
    token = settings.gladly_api_token.get_secret_value() if settings.gladly_api_token else ""
    simulator = GladlySimulator(
        user=settings.gladly_api_user or SANDBOX_API_USER,
        token=token or SANDBOX_API_TOKEN,
    )
    for method, path, handler in _API_ROUTES:
        app.add_api_route(
            API_PREFIX + path, _api(handler), methods=[method], include_in_schema=False
        )
    for method, path, control in _CONTROL_ROUTES:
        app.add_api_route(CONTROL_PREFIX + path, control, methods=[method], include_in_schema=False)
    app.state.gladly = simulator
    return simulator
