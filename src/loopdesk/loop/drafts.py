"""Loop's Draft Returns API (the Return Create API) and the return-details lookup.

The same HTTP path as `LoopReturnsClient` (base URL, token, rate limit, retries, stats):
`LoopDraftsClient.over(returns_client)` shares that client's, `from_settings` builds its
own. Each call answers a model of `loopdesk.domain.drafts`; the draft's `links` (see
`next_steps`, `allows`, `require_step` there) say which call may follow, not this module.

Failures are worded as Gladly's Loop Returns app (1.6.2) words them
(reference/loop-draft-returns.md, "Error mapping"):
- 422: `DraftRejected`, its `errors` the peer's structured list (Loop's `code` kept);
- 401: `LoopAuthError` saying the token lacks a Draft Returns / Returns scope;
- anything else keeps the HTTP core's class (`LoopNotFound` for 404, `LoopRejected` for
  409 and other 4xx, `LoopUnavailable` for 5xx and timeouts, `LoopRateLimited` for 429)
  with the message `unable to execute action: '<X>'`.
Every error carries X, Loop's own words, in `details.upstreamMessage`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Self, TypeVar
from urllib.parse import quote, urlencode

from pydantic import SecretStr

from loopdesk.domain.drafts import (
    CREDIT_TYPES,
    CURRENCY_TYPES,
    LOOKUP_NEEDS_AN_ID,
    NO_RETURN_FOUND,
    RETURN_TYPES,
    UNAUTHORIZED_MESSAGE,
    Draft,
    DraftTotals,
    ReturnDetails,
    action_failure,
    draft_errors,
    draft_failure_text,
    has_return,
    input_id,
    parse_draft,
    parse_return_details,
    parse_totals,
)
from loopdesk.errors import (
    DraftRejected,
    InvalidInput,
    InvalidUpstreamData,
    LoopAuthError,
    LoopError,
    LoopNotFound,
    LoopRateLimited,
)
from loopdesk.loop.client import UpstreamClient
from loopdesk.loop.http import InvalidLoopBody, UpstreamResponse
from loopdesk.loop.returns import LoopReturnsClient
from loopdesk.settings import Settings

T = TypeVar("T")

DRAFTS_PATH = "/api/v1/draft-returns"
DETAILS_PATH = "/api/v1/warehouse/return/details"
DETAILS_ENDPOINT = "returns.details"


class LoopDraftsClient(UpstreamClient):
    service = LoopReturnsClient.service
    auth_header = LoopReturnsClient.auth_header
    _shares_http = False

    @classmethod
    def configured(cls, settings: Settings) -> tuple[str, SecretStr | None]:
        return LoopReturnsClient.configured(settings)

    @classmethod
    def over(cls, client: LoopReturnsClient) -> Self:
        """A drafts client on `client`'s HTTP path: one connection pool, rate limit,
        retry policy and stats for both. Closing it leaves `client` open."""
        drafts = cls.__new__(cls)
        drafts._http = client._http
        drafts._shares_http = True
        return drafts

    async def aclose(self) -> None:
        if not self._shares_http:
            await super().aclose()

    # Creating a draft ------------------------------------------------------------------

    async def create(
        self, order_name: str, secondary_input: str, *, is_gift: bool | None = False
    ) -> Draft:
        """Initialize a draft for one order; the answer carries the eligibility context
        (eligible and ineligible items, the order's line items, return methods)."""
        body = {
            "order_name": _text_input(order_name, "order_name", required=True),
            "secondary_input": _text_input(secondary_input, "secondary_input"),
            "is_gift": _flag_input(is_gift, "is_gift"),
        }
        return await self._draft("POST", DRAFTS_PATH, "drafts.create", body)

    # Items -----------------------------------------------------------------------------

    async def add_returning_item(self, draft_id: int | str, order_line_item_id: int | str) -> Draft:
        path = f"{_draft_path(draft_id)}/returning-items"
        body = {"order_line_item_id": input_id(order_line_item_id, "order_line_item_id")}
        return await self._draft("POST", path, "drafts.items.add", body)

    async def remove_returning_item(
        self, draft_id: int | str, returning_item_id: int | str
    ) -> Draft:
        return await self._draft(
            "DELETE", _item_path(draft_id, returning_item_id), "drafts.items.remove"
        )

    async def set_return_reason(
        self, draft_id: int | str, returning_item_id: int | str, reason_id: int | str
    ) -> Draft:
        path = f"{_item_path(draft_id, returning_item_id)}/return-reason"
        body = {"reason_id": input_id(reason_id, "reason_id")}
        return await self._draft("POST", path, "drafts.item.reason", body)

    async def set_return_type(
        self, draft_id: int | str, returning_item_id: int | str, return_type: str
    ) -> Draft:
        path = f"{_item_path(draft_id, returning_item_id)}/return-type"
        body = {"return_type": _choice(return_type, "return_type", RETURN_TYPES)}
        return await self._draft("POST", path, "drafts.item.type", body)

    async def add_exchange_item(
        self, draft_id: int | str, returning_item_id: int | str, variant_id: int | str
    ) -> Draft:
        """The variant (of the same product) the customer gets for a returning item."""
        path = f"{_item_path(draft_id, returning_item_id)}/exchange-item"
        body = {"variant_id": input_id(variant_id, "variant_id")}
        return await self._draft("POST", path, "drafts.item.exchange", body)

    async def finalize_items(self, draft_id: int | str) -> Draft:
        return await self._draft(
            "POST", f"{_draft_path(draft_id)}/finalize-items", "drafts.finalize"
        )

    # Outcome, method, totals, submit ---------------------------------------------------

    async def set_credit_type(self, draft_id: int | str, credit_type: str) -> Draft:
        path = f"{_draft_path(draft_id)}/credit-type"
        body = {"credit_type": _choice(credit_type, "credit_type", CREDIT_TYPES)}
        return await self._draft("POST", path, "drafts.credit_type", body)

    async def select_return_method(self, draft_id: int | str, return_method_id: int | str) -> Draft:
        path = f"{_draft_path(draft_id)}/select-return-method"
        body = {"return_method_id": input_id(return_method_id, "return_method_id")}
        return await self._draft("POST", path, "drafts.return_method", body)

    async def totals(self, draft_id: int | str) -> DraftTotals:
        endpoint = "drafts.totals"
        response = await self._send("GET", f"{_draft_path(draft_id)}/totals", endpoint)
        return _parsed(parse_totals, response, endpoint)

    async def submit(self, draft_id: int | str) -> Draft:
        """Turn the draft into a return (`Draft.return_id`)."""
        return await self._draft("POST", f"{_draft_path(draft_id)}/submit", "drafts.submit")

    # Reading and cancelling ------------------------------------------------------------

    async def get(self, draft_id: int | str) -> Draft:
        """The draft now: state, items, the exchange catalog and the next legal steps."""
        return await self._draft("GET", _draft_path(draft_id), "drafts.get")

    async def cancel(self, draft_id: int | str) -> Draft:
        return await self._draft("POST", f"{_draft_path(draft_id)}/cancel", "drafts.cancel")

    # Return details ----------------------------------------------------------------------

    async def return_details(
        self,
        *,
        return_id: int | str | None = None,
        order_id: int | str | None = None,
        order_name: str | None = None,
        currency_type: str | None = None,
    ) -> ReturnDetails:
        """One return by return id, order id or order name (Returns read scope).

        Parameters are sent only when given, in the peer's order; without any of the
        first three, `InvalidInput` and no request. A 2xx answer naming no return is
        `LoopNotFound` ("no return found: ...").
        """
        params: list[tuple[str, str]] = []
        if not _blank(return_id):
            params.append(("return_id", str(input_id(return_id, "return_id"))))
        if not _blank(order_id):
            params.append(("order_id", str(input_id(order_id, "order_id"))))
        if not _blank(order_name):
            params.append(("order_name", _text_input(order_name, "order_name", required=True)))
        if not params:
            raise InvalidInput(LOOKUP_NEEDS_AN_ID)
        if currency_type is not None:
            currency = _choice(currency_type, "currency_type", CURRENCY_TYPES)
            params.append(("currency_type", currency))
        path = DETAILS_PATH + "?" + urlencode(params, quote_via=quote, safe="")
        response = await self._send("GET", path, DETAILS_ENDPOINT)
        if isinstance(response.body, dict) and not has_return(response.body):
            text = self._http._scrub(draft_failure_text(response.body))
            raise LoopNotFound(
                NO_RETURN_FOUND.format(text),
                status=response.status,
                body=response.body,
                endpoint=DETAILS_ENDPOINT,
                details={"upstreamMessage": text},
            )
        return _parsed(parse_return_details, response, DETAILS_ENDPOINT)

    # The wire --------------------------------------------------------------------------

    async def _draft(
        self, method: str, path: str, endpoint: str, body: dict[str, Any] | None = None
    ) -> Draft:
        return _parsed(parse_draft, await self._send(method, path, endpoint, body), endpoint)

    async def _send(
        self, method: str, path: str, endpoint: str, body: dict[str, Any] | None = None
    ) -> UpstreamResponse:
        try:
            return await self._http.request(method, path, endpoint=endpoint, json_body=body)
        except LoopError as exc:
            raise self._worded(exc) from exc

    def _worded(self, exc: LoopError) -> LoopError:
        """The HTTP core's error in the peer's words (module docstring)."""
        scrub = self._http._scrub  # the token never shows in a message, even if Loop echoed it
        where: dict[str, Any] = {"status": exc.status, "body": exc.body, "endpoint": exc.endpoint}
        details = {k: v for k, v in exc.details.items() if k not in ("upstreamStatus", "endpoint")}
        error: LoopError
        if exc.status == 422:
            errors = [
                {k: scrub(v) if isinstance(v, str) else v for k, v in entry.items()}
                for entry in draft_errors(exc.body)
            ]
            text = errors[0]["message"] or ""
            error = DraftRejected(text, errors=errors, **where)
            error.details.update({k: v for k, v in details.items() if k != "errors"})
        else:
            # No answer at all (timeouts...): the core's own words are X.
            text = exc.message if exc.status is None else scrub(draft_failure_text(exc.body))
            if exc.status == 401:
                error = LoopAuthError(UNAUTHORIZED_MESSAGE, details=details, **where)
            elif isinstance(exc, LoopRateLimited):
                error = LoopRateLimited(
                    action_failure(text), retry_after=exc.retry_after, details=details, **where
                )
            else:
                # 403/404/409/other 4xx/5xx: the core's class for the status.
                error = type(exc)(action_failure(text), details=details, **where)
        error.details["upstreamMessage"] = text
        return error


def _parsed(parse: Callable[[Any], T], response: UpstreamResponse, endpoint: str) -> T:
    try:
        return parse(response.body)
    except InvalidUpstreamData as exc:
        raise InvalidLoopBody(
            f"Loop Returns: {exc.message}",
            status=response.status,
            endpoint=endpoint,
            body=response.body,
        ) from None


def _draft_path(draft_id: int | str) -> str:
    return f"{DRAFTS_PATH}/{input_id(draft_id, 'draft_id')}"


def _item_path(draft_id: int | str, returning_item_id: int | str) -> str:
    item = input_id(returning_item_id, "returning_item_id")
    return f"{_draft_path(draft_id)}/returning-items/{item}"


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text_input(value: object, name: str, *, required: bool = False) -> str:
    if not isinstance(value, str) or "\x00" in value or (required and not value.strip()):
        raise InvalidInput(
            f"{name} must be {'non-empty ' if required else ''}text", details={"field": name}
        )
    return value


def _flag_input(value: object, name: str) -> bool:
    if value is None:  # the peer's default
        return False
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} must be true or false", details={"field": name})
    return value


def _choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InvalidInput(
            f"{name} must be one of {', '.join(choices)}",
            details={"field": name, "allowed": list(choices)},
        )
    return str(value)
