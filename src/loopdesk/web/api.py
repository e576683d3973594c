"""The console's only way to data and actions: loopdesk's own JSON API, called in-process
(`httpx.ASGITransport`, no socket) as the signed-in key. The pages show what the API
answers, with its validation, audit and errors, so nothing is computed twice."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, get_args
from urllib.parse import quote

import httpx
from starlette.types import ASGIApp

from loopdesk.actions.run import RETURN_ACTIONS

# A name that resolves nowhere: these requests never leave the process.
BASE_URL = "http://console.loopdesk.invalid"

ActionKind = Literal["return-link", "allowlist", "note", "process", "close", "cancel", "flag"]
ACTION_KINDS: tuple[str, ...] = get_args(ActionKind)
assert set(ACTION_KINDS) >= set(RETURN_ACTIONS), "every return action has its form"


def idempotency_key() -> str:
    """A fresh `Idempotency-Key`, drawn when a form is rendered: posting it twice (a
    double click) takes the action once."""
    return secrets.token_urlsafe(18)


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def unauthorized(self) -> bool:
        return self.status == 401

    @property
    def error(self) -> dict[str, Any]:
        """The API's `{"code", "message", "details"}` (a stand-in when the body has none)."""
        error = self.body.get("error")
        if isinstance(error, dict):
            return error
        return {"code": f"http_{self.status}", "message": "unexpected answer", "details": {}}


@dataclass(frozen=True)
class ActionSpec:
    """One action as the console's forms describe it (the API checks every field)."""

    kind: ActionKind
    return_id: str = ""
    order_name: str = ""
    zip: str = ""
    type: str = ""
    value: str = ""
    content: str = ""

    def request(self) -> tuple[str, dict[str, Any] | None]:
        """The API route and body that run it."""
        if self.kind == "return-link":
            return "/v1/actions/return-link", {"orderName": self.order_name, "zip": self.zip}
        if self.kind == "allowlist":
            return "/v1/actions/allowlist", {"type": self.type, "value": self.value}
        rid = quote(self.return_id, safe="")
        if self.kind == "note":
            return f"/v1/returns/{rid}/notes", {"content": self.content}
        return f"/v1/returns/{rid}/{self.kind}", None

    @property
    def title(self) -> str:
        if self.kind == "return-link":
            return f"Create a return link for order {self.order_name}"
        if self.kind == "allowlist":
            return f"Allowlist the {self.type.replace('_', ' ')} {self.value}"
        if self.kind == "note":
            return f"Add a note to return {self.return_id}"
        return f"{self.kind.capitalize()} return {self.return_id}"

    @property
    def consequence(self) -> str:
        """What the agent is about to do to Loop, in words."""
        return {
            "return-link": "Loop makes a link the customer can start a return with.",
            "allowlist": "Loop lets this through its return policy (e.g. past the window).",
            "note": "The note is added to the return in Loop, where every agent sees it.",
            "process": "Loop processes the return: the refund, credit or exchange is issued.",
            "close": "Loop closes the return without processing it.",
            "cancel": "Loop cancels the return; the customer's label stops working.",
            "flag": "Loop flags the return for review by the merchant.",
        }[self.kind]


class ConsoleApi:
    def __init__(self, app: ASGIApp, key: str) -> None:
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url=BASE_URL,
            headers={"Authorization": f"Bearer {key}"},
            # No timeout of our own: the API bounds its upstream calls (README "Failure
            # behaviour"), and a console page waits for what the API answers.
            timeout=None,  # noqa: S113
        )

    async def __aenter__(self) -> ConsoleApi:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Answer:
        response = await self._client.request(method, path, **kwargs)
        try:
            body = response.json()
        except json.JSONDecodeError:
            body = {}
        return Answer(response.status_code, body if isinstance(body, dict) else {"items": body})

    async def lookup(self, emails: list[str], *, fresh: bool = False) -> Answer:
        headers = {"Cache-Control": "no-cache"} if fresh else {}
        params = [("email", email) for email in emails]
        return await self._call("GET", "/v1/customers/lookup", params=params, headers=headers)

    async def decide(self, emails: list[str], *, channel: str = "", intent: str = "") -> Answer:
        body = {"customer": {"emails": emails}, "channel": channel, "intent": intent}
        return await self._call("POST", "/v1/routing/decide", json=body)

    async def audit(self, *, limit: int = 200) -> Answer:
        return await self._call("GET", "/v1/audit", params={"limit": limit})

    async def guide(
        self, conversation_id: str, channel: str, text: str, emails: list[str]
    ) -> Answer:
        body = {
            "conversationId": conversation_id,
            "channel": channel,
            "text": text,
            "customer": {"emails": emails},
        }
        return await self._call("POST", "/v1/guide/messages", json=body)

    async def start_draft(
        self, order_name: str, secondary_input: str, *, is_gift: bool, idempotency_key: str
    ) -> Answer:
        body = {"orderName": order_name, "secondaryInput": secondary_input, "isGift": is_gift}
        headers = {"Idempotency-Key": idempotency_key}
        return await self._call("POST", "/v1/drafts", json=body, headers=headers)

    async def draft(self, draft_id: str) -> Answer:
        return await self._call("GET", f"/v1/drafts/{quote(draft_id, safe='')}")

    async def draft_totals(self, draft_id: str) -> Answer:
        return await self._call("GET", f"/v1/drafts/{quote(draft_id, safe='')}/totals")

    async def drafts(self, *, limit: int = 50, order_names: list[str] | None = None) -> Answer:
        params: list[tuple[str, str | int]] = [("limit", limit)]
        params += [("orderName", name) for name in order_names or ()]
        return await self._call("GET", "/v1/drafts", params=params)

    async def draft_step(
        self, method: str, path: str, body: dict[str, Any] | None, idempotency_key: str
    ) -> Answer:
        """One write on a draft (`web.draft_steps` builds `path` and `body`)."""
        headers = {"Idempotency-Key": idempotency_key}
        return await self._call(method, path, json=body, headers=headers)

    async def act(self, spec: ActionSpec, idempotency_key: str) -> Answer:
        path, body = spec.request()
        # One confirmation is one action: a second click on "Confirm" replays the first
        # answer instead of calling Loop again.
        headers = {"Idempotency-Key": idempotency_key}
        return await self._call("POST", path, json=body, headers=headers)
