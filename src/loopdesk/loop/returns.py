"""Loop Returns REST client: one method per endpoint, answers returned as decoded JSON.

Normalization lives in `loopdesk.domain`; this module only knows the wire.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import structlog
from pydantic import SecretStr

from loopdesk.domain.upstream_errors import action_failure_message, upstream_message
from loopdesk.errors import LoopRejected, LoopValidationError
from loopdesk.loop.client import UpstreamClient
from loopdesk.loop.http import InvalidLoopBody, UpstreamResponse
from loopdesk.settings import Settings

log = structlog.get_logger("loopdesk.loop")

ReturnAction = Literal["process", "close", "cancel", "flag"]


class LoopReturnsClient(UpstreamClient):
    service = "Loop Returns"
    auth_header = "X-Authorization"  # Loop's own header, no "Bearer" prefix

    @classmethod
    def configured(cls, settings: Settings) -> tuple[str, SecretStr | None]:
        return settings.loop_base_url, settings.loop_api_token

    # Reads -------------------------------------------------------------------

    async def list_returns(self, customer_email: str, *, since: dt.date, limit: int) -> Any:
        """Returns of one customer updated since `since` (the `/api/v2` envelope)."""
        path = returns_list_path(customer_email, since=since, limit=limit)
        response = await self._http.request("GET", path, endpoint="returns.list")
        return response.body

    async def list_notes(self, return_id: str) -> list[Any]:
        """A return's notes; Loop's two documented shapes both become a list."""
        try:
            response = await self._http.request(
                "GET", f"/api/v1/warehouse/return/{_seg(return_id)}/notes", endpoint="returns.notes"
            )
        except LoopValidationError as exc:
            # Loop's way of saying "no notes": 422 with the body `false`.
            if exc.body in (False, "false"):
                return []
            raise
        body = response.body
        if isinstance(body, dict) and "notes" in body:
            body = body["notes"]
        if body is None:
            return []
        if not isinstance(body, list):
            raise _shape_error(response, "returns.notes", "a list of notes")
        return body

    async def returns_page(
        self,
        *,
        start: dt.datetime,
        end: dt.datetime,
        state: str,
        cursor: str | None = None,
        page_size: int = 250,
    ) -> tuple[list[Any], str | None]:
        """One page of the detailed returns list (updated in [start, end], one state).

        Loop caps a request's window at 120 days; callers split longer ranges. The
        second value is the cursor of the next page, None on the last page.
        """
        params = [
            ("from", start.strftime("%Y-%m-%d %H:%M:%S")),
            ("to", end.strftime("%Y-%m-%d %H:%M:%S")),
            ("filter", "updated_at"),
            ("state", state),
            ("paginate", "true"),
            ("pageSize", str(page_size)),
        ]
        if cursor:
            params.append(("cursor", cursor))
        path = "/api/v1/warehouse/return/list?" + urlencode(params, quote_via=quote, safe="")
        response = await self._http.request("GET", path, endpoint="returns.warehouse_list")
        body = response.body
        if isinstance(body, list):  # not paginated after all: one page holds everything
            return body, None
        page = _object(response, "returns.warehouse_list")
        items = page.get("returns")
        if not isinstance(items, list):
            raise _shape_error(response, "returns.warehouse_list", "a page of returns")
        return items, _cursor_of(page.get("nextPageUrl"))

    async def return_details(self, return_id: str) -> dict[str, Any]:
        """One return as Loop has it now (`/warehouse/return/details`, §2.3)."""
        path = "/api/v1/warehouse/return/details?" + urlencode(
            [("return_id", str(return_id))], quote_via=quote, safe=""
        )
        response = await self._http.request("GET", path, endpoint="returns.details")
        return _object(response, "returns.details")

    async def list_allowlist(self, page: int = 1) -> dict[str, Any]:
        response = await self._http.request(
            "GET", f"/api/v1/allowlists?page={int(page)}", endpoint="allowlist.list"
        )
        return _object(response, "allowlist.list")

    # Actions -----------------------------------------------------------------

    async def create_return_link(self, name: str, zip: str, gift: bool = False) -> dict[str, Any]:
        """A deep link into the customer's return portal for one order."""
        response = await self._http.request(
            "POST",
            "/api/v1/order/link",
            endpoint="order.link",
            json_body={"name": name, "zip": zip, "gift": gift},
            action=True,
        )
        return _object(response, "order.link")

    async def create_allowlist_entry(self, type: str, value: str) -> dict[str, Any]:
        response = await self._http.request(
            "POST",
            "/api/v1/allowlists",
            endpoint="allowlist.create",
            json_body={"type": type, "value": value},
            action=True,
        )
        return _object(response, "allowlist.create")

    async def delete_allowlist_entry(self, entry_id: str) -> Any:
        """The deletion's body when Loop sends one (204 gives None)."""
        response = await self._http.request(
            "DELETE",
            f"/api/v1/allowlists/{_seg(entry_id)}",
            endpoint="allowlist.delete",
            action=True,
        )
        return response.body

    async def add_note(self, return_id: str, content: str) -> None:
        response = await self._http.request(
            "POST",
            f"/api/v1/warehouse/return/{_seg(return_id)}/note",
            endpoint="returns.note.add",
            json_body={"content": content},
            action=True,
        )
        _raise_on_error_body(response, "returns.note.add")

    async def return_action(self, return_id: str, action: ReturnAction) -> Any:
        """process / close / cancel / flag; Loop answers the JSON `true` on success."""
        endpoint = f"returns.action.{action}"
        response = await self._http.request(
            "POST",
            f"/api/v1/warehouse/return/{_seg(return_id)}/{action}",
            endpoint=endpoint,
            action=True,
        )
        _raise_on_error_body(response, endpoint)
        return response.body


def returns_list_path(customer_email: str, *, since: dt.date, limit: int) -> str:
    """`/api/v2/returns?...` exactly as the peer sends it."""
    # Built by hand: the peer's URL pins the parameter order and `@` as `%40`.
    query = urlencode(
        [
            ("filter", "updated_at"),
            ("limit", str(limit)),
            ("from", since.isoformat()),
            ("customer_email", customer_email),
        ],
        quote_via=quote,
        safe="",
    )
    return f"/api/v2/returns?{query}"


def returns_list_url(base_url: str, customer_email: str, *, since: dt.date, limit: int) -> str:
    """The full URL `list_returns` requests (for conformance checks and audit logs)."""
    return base_url.rstrip("/") + returns_list_path(customer_email, since=since, limit=limit)


def _cursor_of(next_page_url: Any) -> str | None:
    """The `cursor` parameter of Loop's `nextPageUrl` (we re-send our own query)."""
    if not isinstance(next_page_url, str) or not next_page_url:
        return None
    values = parse_qs(urlsplit(next_page_url).query).get("cursor")
    return values[0] if values else None


def _seg(value: str) -> str:
    """A caller-supplied id as one path segment: no `/` or `?` can reshape the URL."""
    return quote(str(value), safe="")


def _object(response: UpstreamResponse, endpoint: str) -> dict[str, Any]:
    if not isinstance(response.body, dict):
        raise _shape_error(response, endpoint, "a JSON object")
    return response.body


def _shape_error(response: UpstreamResponse, endpoint: str, expected: str) -> InvalidLoopBody:
    return InvalidLoopBody(
        f"Loop Returns sent {type(response.body).__name__} where {expected} was expected",
        status=response.status,
        endpoint=endpoint,
        body=response.body,
    )


def _raise_on_error_body(response: UpstreamResponse, endpoint: str) -> None:
    """Loop reports state errors ("Return is closed...") with HTTP 200: catch them.

    They are conflicts with the return's state, so the error answers 409 to callers
    while `status` keeps the real upstream status.
    """
    body = response.body
    if body in (True, "true") or not isinstance(body, dict) or not upstream_message(body):
        return
    error = LoopRejected(
        action_failure_message(body),
        status=response.status,
        body=body,
        endpoint=endpoint,
        details={"stateError": True},
    )
    error.http_status = 409
    log.info("loop.state_error", endpoint=endpoint, status=response.status)
    raise error
