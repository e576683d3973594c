"""Signed Loop webhooks, sent by the sandbox when a return or its label changes.

Loop signs what PHP's `json_encode` prints (compact, `/` escaped as `\\/`, non-ASCII as
`\\uXXXX`) and puts `base64(HMAC-SHA256(secret, body))` in `X-Loop-Signature`; a
receiver must verify over the exact bytes it got, so we sign exactly the bytes we send.
Failed deliveries are retried 5 times (6 attempts) with exponential backoff and jitter,
as Loop documents (reference section 7).

Deliveries run as background tasks so an action's response is never held up by the
receiver; `Deliveries` keeps the tasks referenced (asyncio holds only weak references)
and lets tests wait for them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from random import Random
from typing import Any

import httpx
from fastapi import FastAPI

from loopdesk.sandbox.payloads import DEFAULT_SHOP_ID as DEFAULT_SHOP_ID  # re-exported
from loopdesk.sandbox.payloads import label_payload, return_payload
from loopdesk.sandbox.payloads import shop_id as shop_id  # re-exported
from loopdesk.sandbox.subscriptions import Subscriptions
from loopdesk.sandbox.world import World

RETRIES = 5
DEFAULT_BASE_DELAY = 1.0
MAX_DELAY = 300.0
# Loop honours a receiver's Retry-After up to 30 minutes; beyond that it gives up.
MAX_RETRY_AFTER = 1800.0
DEFAULT_TIMEOUT = 10.0
# What `send` reports when no attempt got an HTTP response at all.
NO_RESPONSE = 0
MAX_LOG = 1000

log = logging.getLogger(__name__)


def encode_body(payload: Any) -> bytes:
    """PHP `json_encode` output: compact, ASCII-only, every `/` escaped as `\\/`."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    # Safe as a plain replace: `/` only occurs inside strings, and `\\/` is a valid escape
    # even right after an escaped backslash.
    return text.replace("/", "\\/").encode("ascii")


def sign(body: bytes, secret: str) -> str:
    """The `X-Loop-Signature` value for `body`: base64 of its HMAC-SHA256 under `secret`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def backoff_delay(attempt: int, base_delay: float, rng: Random) -> float:
    """Seconds before retry `attempt` (1-based): `base * 2**(attempt-1)`, equal jitter."""
    ceiling = min(MAX_DELAY, base_delay * 2.0 ** (attempt - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after", "").strip()
    try:
        value = float(raw)
    except ValueError:
        return None  # HTTP-date form or garbage: fall back to our own backoff
    return value if value >= 0 else None


class WebhookSender:
    """Delivers webhook bodies to one URL, signed with one secret."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        client: httpx.AsyncClient | None = None,
        retries: int = RETRIES,
        base_delay: float = DEFAULT_BASE_DELAY,
        timeout: float = DEFAULT_TIMEOUT,
        rng: Random | None = None,
    ) -> None:
        self.url = url
        self.secret = secret
        self.client = client
        self.retries = retries
        self.base_delay = base_delay
        self.timeout = timeout
        self.rng = rng or Random()

    async def send(self, topic: str, trigger: str, payload: Mapping[str, Any]) -> int:
        """POST `{topic, trigger, **payload}`; the final status, or NO_RESPONSE (0)."""
        rest = {k: v for k, v in payload.items() if k not in ("topic", "trigger")}
        body = encode_body({"topic": topic, "trigger": trigger, **rest})
        headers = {"Content-Type": "application/json", "X-Loop-Signature": sign(body, self.secret)}
        if self.client is not None:
            return await self._deliver(self.client, body, headers)
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            return await self._deliver(client, body, headers)

    async def _deliver(
        self, client: httpx.AsyncClient, body: bytes, headers: dict[str, str]
    ) -> int:
        status, wait = NO_RESPONSE, 0.0
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(wait)
            try:
                response = await client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError:
                status = NO_RESPONSE
                wait = backoff_delay(attempt + 1, self.base_delay, self.rng)
                continue
            status = response.status_code
            if 200 <= status < 300:
                return status
            wait = backoff_delay(attempt + 1, self.base_delay, self.rng)
            asked = _retry_after(response)
            if asked is not None:
                if asked > MAX_RETRY_AFTER:
                    return status
                wait = asked
        return status


@dataclass(frozen=True)
class Event:
    topic: str
    trigger: str
    payload: dict[str, Any]


def return_event(
    world: World, item: Mapping[str, Any], trigger: str, *, with_updated_at: bool = False
) -> Event:
    """A `return` topic event: the return as it is now, in Loop's documented shape
    (`payloads.return_payload`; `with_updated_at` gives the older shape)."""
    return Event("return", trigger, return_payload(world, item, with_updated_at=with_updated_at))


def label_event(world: World, item: Mapping[str, Any]) -> Event:
    """A `label`/`label.updated` event with the return's current label fields."""
    return Event("label", "label.updated", label_payload(world, item))


@dataclass(frozen=True)
class Delivery:
    topic: str
    trigger: str
    status: int


class Deliveries:
    """The background sends of one app, and a log of how they ended."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()
        self.log: deque[Delivery] = deque(maxlen=MAX_LOG)

    def spawn(self, sender: WebhookSender, events: Sequence[Event]) -> None:
        """Send `events` in order, in the background (order matters: updated before closed)."""
        task = asyncio.get_running_loop().create_task(self._run(sender, list(events)))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, sender: WebhookSender, events: list[Event]) -> None:
        for event in events:
            try:
                status = await sender.send(event.topic, event.trigger, event.payload)
            except Exception:
                # Nobody awaits this task; a bug must be visible, not a silent lost event.
                log.exception("sandbox webhook %s/%s failed", event.topic, event.trigger)
                status = NO_RESPONSE
            self.log.append(Delivery(event.topic, event.trigger, status))

    async def drained(self) -> None:
        """Wait until every send started so far (and any started meanwhile) has ended."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)


def install(app: FastAPI) -> None:
    """Webhook state of a fresh app: no receiver, no deliveries yet."""
    deliveries = Deliveries()
    app.state.webhooks = None
    app.state.webhook_deliveries = deliveries
    app.state.webhook_tasks_drained = deliveries.drained


def configure_webhooks(
    app: FastAPI,
    url: str,
    secret: str,
    client: httpx.AsyncClient | None = None,
    *,
    base_delay: float = DEFAULT_BASE_DELAY,
) -> WebhookSender:
    """Send this app's webhooks to `url`, signed with `secret` (replaces any receiver)."""
    sender = WebhookSender(url, secret, client=client, base_delay=base_delay)
    app.state.webhooks = sender
    return sender


def emit(app: FastAPI, events: Sequence[Event]) -> None:
    """Queue `events` for every receiver; without one, webhooks are off."""
    if not events:
        return
    deliveries: Deliveries = app.state.webhook_deliveries
    for sender, selected in targets(app, events):
        deliveries.spawn(sender, selected)


def targets(app: FastAPI, events: Sequence[Event]) -> list[tuple[WebhookSender, list[Event]]]:
    """Who gets which events: the control route's receiver gets them all; each URL with
    active subscriptions gets the events it subscribed to, in order, once each, signed
    with the sandbox's webhook secret."""
    found: list[tuple[WebhookSender, list[Event]]] = []
    sender: WebhookSender | None = getattr(app.state, "webhooks", None)
    if sender is not None:
        found.append((sender, list(events)))
    registry: Subscriptions | None = getattr(app.state, "subscriptions", None)
    if registry is None:
        return found
    by_url: dict[str, list[Event]] = {}
    for event in events:
        for url in registry.urls_for(event.topic, event.trigger):
            by_url.setdefault(url, []).append(event)
    if by_url:
        secret = app.state.settings.sandbox_webhook_secret
        found += [(WebhookSender(url, secret), selected) for url, selected in by_url.items()]
    return found
