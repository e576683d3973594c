"""Loop's webhooks API (reference 7.2): the subscriptions that send events to loopdesk.

It goes over a Loop Returns client's own `UpstreamHTTP` (same token, rate limit, retries
and typed errors). `subscribe` is safe to run again: it creates only the subscriptions
that are missing for the URL and reactivates inactive ones, so Loop never sends an
event twice because the command ran twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from loopdesk.domain.webhooks import APPLIED_SUBSCRIPTIONS
from loopdesk.errors import LoopValidationError
from loopdesk.loop.http import InvalidLoopBody, UpstreamHTTP, UpstreamResponse
from loopdesk.loop.returns import LoopReturnsClient

WEBHOOKS_PATH = "/api/v1/webhooks"
Outcome = Literal["created", "reactivated", "exists", "rejected"]


@dataclass(frozen=True)
class Subscribed:
    """What `subscribe` did for one topic and trigger."""

    topic: str
    trigger: str
    outcome: Outcome
    id: str | None = None
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class LoopWebhooksApi:
    def __init__(self, http: UpstreamHTTP) -> None:
        self._http = http

    @classmethod
    def of(cls, client: LoopReturnsClient) -> LoopWebhooksApi:
        """The webhooks API on `client`'s connection (one rate limit for both)."""
        return cls(client._http)

    async def subscriptions(self) -> list[dict[str, Any]]:
        response = await self._http.request("GET", WEBHOOKS_PATH, endpoint="webhooks.list")
        body = response.body
        items = body.get("webhooks") if isinstance(body, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise _shape_error(response, "webhooks.list", '{"webhooks": [...]}')
        return items

    async def create(self, topic: str, trigger: str, url: str) -> dict[str, Any]:
        response = await self._http.request(
            "POST",
            WEBHOOKS_PATH,
            endpoint="webhooks.create",
            json_body={"topic": topic, "trigger": trigger, "url": url, "status": "active"},
        )
        if not isinstance(response.body, dict):
            raise _shape_error(response, "webhooks.create", "a webhook object")
        return response.body

    async def activate(self, webhook: dict[str, Any]) -> None:
        """Set an inactive subscription active again (the whole object, as PUT wants)."""
        fields = {k: webhook.get(k) for k in ("topic", "trigger", "url")}
        await self._http.request(
            "PUT",
            f"{WEBHOOKS_PATH}/{_seg(_id(webhook))}",
            endpoint="webhooks.update",
            json_body={**fields, "status": "active"},
        )

    async def delete(self, webhook_id: str) -> None:
        """Remove one subscription; `LoopNotFound` when Loop has none with that id."""
        await self._http.request(
            "DELETE", f"{WEBHOOKS_PATH}/{_seg(webhook_id)}", endpoint="webhooks.delete"
        )

    async def subscribe(
        self, url: str, pairs: Iterable[tuple[str, str]] = APPLIED_SUBSCRIPTIONS
    ) -> list[Subscribed]:
        """Every topic and trigger loopdesk applies, sent to `url`, each exactly once.

        A pair Loop refuses (422) is reported and the others still go through.
        """
        existing = [w for w in await self.subscriptions() if w.get("url") == url]
        results: list[Subscribed] = []
        for topic, trigger in pairs:
            same = [w for w in existing if (w.get("topic"), w.get("trigger")) == (topic, trigger)]
            active = [w for w in same if w.get("status") == "active"]
            if active:
                results.append(Subscribed(topic, trigger, "exists", _id(active[0])))
            elif same:
                await self.activate(same[0])
                results.append(Subscribed(topic, trigger, "reactivated", _id(same[0])))
            else:
                try:
                    created = await self.create(topic, trigger, url)
                except LoopValidationError as exc:
                    results.append(Subscribed(topic, trigger, "rejected", message=exc.message))
                    continue
                results.append(Subscribed(topic, trigger, "created", _id(created)))
        return results


def _id(webhook: dict[str, Any]) -> str:
    return str(webhook.get("id", ""))


def _seg(value: str) -> str:
    return quote(str(value), safe="")


def _shape_error(response: UpstreamResponse, endpoint: str, expected: str) -> InvalidLoopBody:
    return InvalidLoopBody(
        f"Loop Returns sent {type(response.body).__name__} where {expected} was expected",
        status=response.status,
        endpoint=endpoint,
        body=response.body,
    )
