"""Loop's webhooks API (reference 7.2): `GET|POST /webhooks`, `GET|PUT|DELETE /webhooks/{id}`.

A subscription is one topic, one trigger and a URL; only `active` ones receive events
(`webhooks.emit` sends to them). Validation answers as Loop does: Laravel's 422 with
"Must be one of the following values:..." for a bad topic or trigger, 404
`{"errors":{"code":"NOT_FOUND"}}` for an unknown id. New subscriptions are `inactive`
unless the body says otherwise, as Loop's default is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from loopdesk.sandbox.responses import json_body, json_response, laravel_invalid

# The topics Loop's validation lists, and each topic's triggers (reference 7.1).
TOPIC_TRIGGERS: dict[str, tuple[str, ...]] = {
    "return": ("return.created", "return.updated", "return.closed"),
    "label": ("label.created", "label.updated", "label.requested", "label.closed"),
    "restock": ("restock.requested",),
}
STATUSES = ("active", "inactive")
NOT_FOUND = {"errors": {"code": "NOT_FOUND"}}
MAX_URL = 2048


@dataclass
class Subscription:
    id: int
    shop_id: Any
    topic: str
    trigger: str
    url: str
    status: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Subscriptions:
    """The subscriptions of one sandbox, in creation order."""

    def __init__(self, shop_id: Any) -> None:
        self.shop_id = shop_id
        self.items: dict[int, Subscription] = {}
        self._next_id = 1

    def add(self, topic: str, trigger: str, url: str, status: str) -> Subscription:
        item = Subscription(self._next_id, self.shop_id, topic, trigger, url, status)
        self.items[item.id] = item
        self._next_id += 1
        return item

    def urls_for(self, topic: str, trigger: str) -> list[str]:
        """The URLs of the active subscriptions to this topic and trigger, each once."""
        urls = [
            s.url
            for s in self.items.values()
            if s.status == "active" and s.topic == topic and s.trigger == trigger
        ]
        return list(dict.fromkeys(urls))


def install(app: FastAPI, shop_id: Any) -> None:
    app.state.subscriptions = Subscriptions(shop_id)


def _registry(request: Request) -> Subscriptions:
    registry: Subscriptions = request.app.state.subscriptions
    return registry


def _one_of(values: tuple[str, ...]) -> str:
    return "Must be one of the following values:" + ",".join(values)


def _valid_url(value: Any) -> bool:
    if not isinstance(value, str) or not value or len(value) > MAX_URL:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _problems(fields: Mapping[str, Any], *, partial: bool) -> dict[str, list[str]]:
    """Laravel-style errors for a subscription body (`partial`: only the fields given)."""
    errors: dict[str, list[str]] = {}
    topic, trigger = fields.get("topic"), fields.get("trigger")
    if not partial or "topic" in fields:
        if topic in (None, ""):
            errors["topic"] = ["The topic field is required."]
        elif topic not in TOPIC_TRIGGERS:
            errors["topic"] = [_one_of(tuple(TOPIC_TRIGGERS))]
    if (not partial or "trigger" in fields) and trigger in (None, ""):
        errors["trigger"] = ["The trigger field is required."]
    if (not partial or "url" in fields) and not _valid_url(fields.get("url")):
        errors["url"] = ["The url must be a valid URL."]
    if "status" in fields and fields["status"] not in STATUSES:
        errors["status"] = [_one_of(STATUSES)]
    return errors


def _trigger_problem(topic: Any, trigger: Any) -> dict[str, list[str]]:
    allowed = TOPIC_TRIGGERS.get(str(topic), ())
    if allowed and trigger not in allowed:
        return {"trigger": [_one_of(allowed)]}
    return {}


async def _fields(request: Request) -> dict[str, Any]:
    _, body = await json_body(request)
    return body if isinstance(body, dict) else {}


def _found(request: Request) -> Subscription | None:
    try:
        key = int(request.path_params["webhook_id"])
    except ValueError:
        return None
    return _registry(request).items.get(key)


async def list_webhooks(request: Request) -> Response:
    items = [s.to_json() for s in _registry(request).items.values()]
    return json_response({"webhooks": items})


async def create_webhook(request: Request) -> Response:
    fields = await _fields(request)
    errors = _problems(fields, partial=False)
    if "topic" not in errors and "trigger" not in errors:
        errors |= _trigger_problem(fields["topic"], fields["trigger"])
    if errors:
        return laravel_invalid(errors)
    item = _registry(request).add(
        fields["topic"], fields["trigger"], fields["url"], fields.get("status", "inactive")
    )
    return json_response(item.to_json(), 201)


async def get_webhook(request: Request) -> Response:
    item = _found(request)
    if item is None:
        return json_response(NOT_FOUND, 404)
    return json_response(item.to_json())


async def update_webhook(request: Request) -> Response:
    item = _found(request)
    if item is None:
        return json_response(NOT_FOUND, 404)
    fields = await _fields(request)
    errors = _problems(fields, partial=True)
    if "topic" not in errors and "trigger" not in errors:
        topic, trigger = fields.get("topic", item.topic), fields.get("trigger", item.trigger)
        errors |= _trigger_problem(topic, trigger)
    if errors:
        return laravel_invalid(errors)
    for name in ("topic", "trigger", "url", "status"):
        if name in fields:
            setattr(item, name, fields[name])
    return Response(status_code=204)


async def delete_webhook(request: Request) -> Response:
    item = _found(request)
    if item is None:
        return json_response(NOT_FOUND, 404)
    del _registry(request).items[item.id]
    return Response(status_code=204)
