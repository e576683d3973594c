"""Gladly's REST API (`/api/v1`): the reads and writes re-routing needs.

Built on the project's HTTP core (`loop.http.UpstreamHTTP`), so Gladly gets the same
timeouts, retries, logs and 429 handling as Loop (a `Retry-After` is waited for, every
request of the client pausing with it). Gladly allows 10 requests a second per method
and organisation; the client keeps one window of `LOOPDESK_GLADLY_RATE_LIMIT_PER_S` (10)
requests in any second for all its methods, shared on Redis by every worker when
`LOOPDESK_REDIS_URL` is set. Auth is HTTP Basic: the API user's email and an API token.

Failures are typed (`GladlyError` and its kinds), worded with Gladly's own
`errors[].detail`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from loopdesk.errors import (
    ConfigError,
    InvalidUpstreamData,
    LoopAuthError,
    LoopError,
    LoopNotFound,
    LoopRateLimited,
    LoopUnavailable,
)
from loopdesk.loop.closing import AsyncClosing
from loopdesk.loop.http import UpstreamHTTP
from loopdesk.loop.stats import UpstreamStats
from loopdesk.settings import Settings

API_PATH = "/api/v1"
SETTINGS = ("LOOPDESK_GLADLY_BASE_URL", "LOOPDESK_GLADLY_API_USER", "LOOPDESK_GLADLY_API_TOKEN")
CLOSED = "CLOSED"
# Merges chain (A into B, later B into C); a longer chain is refused, not followed.
MAX_MERGE_HOPS = 3


class GladlyError(LoopError):
    """Gladly answered with an error, or not at all. A `LoopError` because that is the
    HTTP core's upstream error: the action layer reads `details.outcomeUnknown` (a write
    that may have landed) the same way for every upstream."""

    code = "gladly_error"
    http_status = 502


class GladlyUnavailable(GladlyError):
    """Timeouts, connection failures and 5xx that outlived the retries."""

    code = "gladly_unavailable"
    http_status = 503


class GladlyRateLimited(GladlyError):
    """Gladly's 429 outlived the waits."""

    code = "gladly_rate_limited"
    http_status = 503


class GladlyAuthError(GladlyError):
    """401/403: the API user or token is wrong, or the user lacks the API permission."""

    code = "gladly_unauthorized"
    http_status = 502


class GladlyNotFound(GladlyError):
    code = "gladly_not_found"
    http_status = 404


class GladlyRejected(GladlyError):
    """Gladly refused the request (400 `invalid_state`, ...): `details.errors` is its
    list of `{attr, code, detail}`."""

    code = "gladly_rejected"
    http_status = 400


_KINDS: tuple[tuple[type[LoopError], type[GladlyError]], ...] = (
    (LoopRateLimited, GladlyRateLimited),
    (LoopUnavailable, GladlyUnavailable),
    (LoopAuthError, GladlyAuthError),
    (LoopNotFound, GladlyNotFound),
)
# What of the HTTP core's details a Gladly error keeps.
_KEPT_DETAILS = ("outcomeUnknown", "retryAfter")


def gladly_errors(body: Any) -> list[dict[str, str]]:
    """Gladly's error list (`{"errors": [{"attr", "code", "detail"}]}`), as strings;
    empty when the body is not of that shape."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return []
    return [
        {k: str(item[k]) for k in ("attr", "code", "detail") if item.get(k) is not None}
        for item in errors
        if isinstance(item, dict)
    ]


def typed_error(exc: LoopError) -> GladlyError:
    """The HTTP core's error for a Gladly call as a Gladly error."""
    kind: type[GladlyError] = next(
        (gladly for loop, gladly in _KINDS if isinstance(exc, loop)), GladlyRejected
    )
    errors = gladly_errors(exc.body)
    message = exc.message
    if errors:
        first = errors[0]
        message = first.get("detail") or first.get("code") or message
        if first.get("attr"):
            message = f"{first['attr']}: {message}"
    details = {k: exc.details[k] for k in _KEPT_DETAILS if k in exc.details}
    if errors:
        details["errors"] = errors
    return kind(message, status=exc.status, body=exc.body, endpoint=exc.endpoint, details=details)


def basic_auth(user: str, token: str) -> str:
    """The `Authorization` value for Gladly's API: Basic, `email:token`."""
    return "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode("ascii")


@dataclass(frozen=True)
class Conversation:
    """The fields of `GET /conversations/{id}` re-routing reads."""

    id: str
    customer_id: str
    inbox_id: str | None
    agent_id: str | None
    status: str

    @property
    def open(self) -> bool:
        return self.status != CLOSED


@dataclass(frozen=True)
class Profile:
    """A Gladly customer profile: its id and email addresses (primary first,
    normalized as Gladly normalizes them: lower-cased)."""

    id: str
    emails: tuple[str, ...]


class GladlyClient(AsyncClosing):
    service = "Gladly"

    def __init__(
        self,
        *,
        base_url: str,
        user: str,
        token: str,
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = UpstreamHTTP(
            service=self.service,
            base_url=self.base_url + API_PATH,
            token=basic_auth(user, token),
            auth_header="Authorization",
            settings=settings,
            transport=transport,
            rate_limit=(settings.gladly_rate_limit_per_s, 1.0),
        )

    @staticmethod
    def configured(settings: Settings) -> bool:
        """True when the base URL, API user and token are all set; `ConfigError` when
        only some are (a typo would otherwise switch re-routing off silently)."""
        token = settings.gladly_api_token.get_secret_value() if settings.gladly_api_token else ""
        values = (settings.gladly_base_url, settings.gladly_api_user, token)
        if all(values):
            return True
        if any(values):
            missing = [name for name, value in zip(SETTINGS, values, strict=True) if not value]
            raise ConfigError(
                "Gladly's API needs its base URL, API user and API token: "
                f"{', '.join(missing)} not set",
                details={"missing": missing},
            )
        return False

    @classmethod
    def from_settings(
        cls, settings: Settings, transport: httpx.AsyncBaseTransport | None = None
    ) -> GladlyClient | None:
        """The client of the configured organisation; None when none is configured."""
        if not cls.configured(settings):
            return None
        assert settings.gladly_base_url and settings.gladly_api_user and settings.gladly_api_token
        return cls(
            base_url=settings.gladly_base_url,
            user=settings.gladly_api_user,
            token=settings.gladly_api_token.get_secret_value(),
            settings=settings,
            transport=transport,
        )

    @property
    def stats(self) -> UpstreamStats:
        return self._http.stats

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        json_body: Any = None,
        idempotent: bool | None = None,
    ) -> Any:
        try:
            response = await self._http.request(
                method, path, endpoint=endpoint, json_body=json_body, idempotent=idempotent
            )
        except LoopError as exc:
            raise typed_error(exc) from None
        return response.body

    async def conversation(self, conversation_id: str) -> Conversation:
        """`GET /conversations/{id}`."""
        body = await self._call(
            "GET", f"/conversations/{_seg(conversation_id)}", endpoint="gladly.conversation"
        )
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise _shape("gladly.conversation", "a conversation")
        assignee = _object(body.get("assignee"))
        return Conversation(
            id=body["id"],
            customer_id=str(body.get("customerId") or ""),
            inbox_id=_text(body.get("inboxId") or assignee.get("inboxId")),
            agent_id=_text(body.get("agentId") or assignee.get("agentId")),
            status=str(body.get("status") or "OPEN").upper(),
        )

    async def customer(self, customer_id: str) -> Profile:
        """`GET /customer-profiles/{id}`: the profile's email addresses. A profile merged
        into another answers 301 with `meta.new`; the survivor is read instead (its
        `id` is then the survivor's)."""
        current, seen = customer_id, [customer_id]
        while True:
            try:
                body = await self._call(
                    "GET", f"/customer-profiles/{_seg(current)}", endpoint="gladly.customer"
                )
                break
            except GladlyRejected as exc:
                survivor = merged_into(exc)
                if survivor is None or survivor in seen or len(seen) > MAX_MERGE_HOPS:
                    raise
                seen.append(survivor)
                current = survivor
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise _shape("gladly.customer", "a customer profile")
        emails = body.get("emails")
        found: list[tuple[bool, str]] = []
        for item in emails if isinstance(emails, list) else []:
            if not isinstance(item, dict):
                continue
            address = _text(item.get("normalized") or item.get("original"))
            if address:
                found.append((item.get("primary") is not True, address.strip().lower()))
        ordered = [address for _, address in sorted(found, key=lambda pair: pair[0])]
        return Profile(id=body["id"], emails=tuple(dict.fromkeys(ordered)))

    async def assign_inbox(self, conversation_id: str, inbox_id: str) -> None:
        """`PATCH /conversations/{id}` with `assignee.inboxId` only: the conversation goes
        to the inbox's queue (no agent), as Gladly's routing then assigns it. Setting
        the same inbox twice is harmless, so a timeout is retried."""
        await self._call(
            "PATCH",
            f"/conversations/{_seg(conversation_id)}",
            endpoint="gladly.assign",
            json_body={"assignee": {"inboxId": inbox_id}},
            idempotent=True,
        )

    async def add_note(self, conversation_id: str, body: str) -> None:
        """`POST /conversations/{id}/notes`: a note on the conversation's timeline, for
        the agents (never sent to the customer). Not repeated after a timeout: a
        second note would show twice."""
        await self._call(
            "POST",
            f"/conversations/{_seg(conversation_id)}/notes",
            endpoint="gladly.note",
            json_body={"content": {"body": body}},
        )


def merged_into(exc: GladlyRejected) -> str | None:
    """The surviving profile's id when Gladly answered 301 for a merged profile."""
    if exc.status != 301:
        return None
    meta = _object(_object(exc.body).get("meta"))
    return _text(meta.get("new"))


def _seg(value: str) -> str:
    return quote(str(value), safe="")


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _shape(endpoint: str, what: str) -> InvalidUpstreamData:
    return InvalidUpstreamData(
        f"Gladly sent something other than {what}", details={"endpoint": endpoint}
    )
