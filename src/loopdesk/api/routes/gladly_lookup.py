"""Gladly's customer Lookup Adaptor: `POST /gladly/lookup` (`gladly.lookup`).

Not under loopdesk's bearer keys: Gladly signs the request (`Gladly-Authorization`,
checked when `LOOPDESK_GLADLY_SIGNING_KEY` is set) and may send Basic auth (checked when
`LOOPDESK_GLADLY_LOOKUP_BASIC_USER`/`_PASSWORD` are set). A request that fails either
gets a 401 before its body is even parsed: no lookup, no store read or write.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from loopdesk.api.deps import SettingsDep
from loopdesk.api.errors import ERROR_RESPONSES, error_response
from loopdesk.errors import Unauthorized
from loopdesk.gladly.lookup import LookupAnswer, LookupDesk, parse_lookup
from loopdesk.gladly.signing import SignatureRejected, header_map, verify_request
from loopdesk.settings import Settings

log = structlog.get_logger(__name__)

router = APIRouter(tags=["gladly"])

SIGNING_KEY_SETTING = "LOOPDESK_GLADLY_SIGNING_KEY"
REALM = "loopdesk"
LOOKUP_PATH = "/gladly/lookup"


class LookupIn(BaseModel):
    """Gladly's lookup request (`reference/gladly.md` §1.2), for the schema: the route
    reads the raw body itself, after the signature is checked over its bytes."""

    lookupLevel: Literal["BASIC", "DETAILED"]
    query: dict[str, Any] = Field(
        description="`emails`/`email` (a string or a list), `name`, `externalCustomerId`, "
        "the profile's custom attributes flat or under `customAttributes`"
    )
    uniqueMatchRequired: bool = False


ERRORS: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    401: {**ERROR_RESPONSES[401], "description": "Bad or missing signature or Basic auth"},
}


def signing_key(settings: Settings) -> str | None:
    key = settings.gladly_signing_key
    return key.get_secret_value() if key and key.get_secret_value() else None


def basic_credentials(settings: Settings) -> tuple[str, str] | None:
    password = settings.gladly_lookup_basic_password
    if not settings.gladly_lookup_basic_user or password is None:
        return None
    return settings.gladly_lookup_basic_user, password.get_secret_value()


def startup_notice(settings: Settings) -> None:
    """Said once at start-up when lookups are not signature-checked (the contract)."""
    if signing_key(settings) is None:
        log.warning(
            "gladly.lookup_unsigned",
            setting=SIGNING_KEY_SETTING,
            notice=f"POST {LOOKUP_PATH} does not check Gladly-Authorization signatures: "
            f"set {SIGNING_KEY_SETTING} to the Signing Key of the lookup app in Gladly",
        )


async def _desk(request: Request) -> LookupDesk:
    state = request.app.state
    return LookupDesk(
        customers=state.customers,
        routing=state.routing,
        processing=state.policy.processing,
        budget_s=state.settings.gladly_lookup_budget_s,
    )


DeskDep = Annotated[LookupDesk, Depends(_desk)]


def _check_basic(request: Request, user: str, password: str) -> None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        raise Unauthorized("Basic auth is required", details={"header": "Authorization"})
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized(
            "Basic auth is base64 of user:password", details={"header": "Authorization"}
        ) from None
    given_user, colon, given_password = decoded.partition(":")
    # Both compared, in constant time, whatever the first says.
    same_user = hmac.compare_digest(given_user.encode(), user.encode())
    same_password = hmac.compare_digest(given_password.encode(), password.encode())
    if not (colon and same_user and same_password):
        raise Unauthorized("wrong Basic auth user or password", details={"header": "Authorization"})


def _authenticate(request: Request, settings: Settings, body: bytes) -> None:
    credentials = basic_credentials(settings)
    if credentials is not None:
        _check_basic(request, *credentials)
    key = signing_key(settings)
    if key is not None:
        verify_request(
            key,
            request.method,
            settings.gladly_lookup_public_path or request.url.path,
            request.url.query,
            header_map(request.headers.items()),
            body,
            replay_window_s=settings.gladly_lookup_replay_window_s,
        )


@router.post(
    LOOKUP_PATH,
    summary="Gladly's customer Lookup Adaptor (BASIC and DETAILED)",
    description="Signed by Gladly (`Gladly-Authorization`) when `LOOPDESK_GLADLY_SIGNING_KEY` "
    "is set; answers within `LOOPDESK_GLADLY_LOOKUP_BUDGET_S` plus a store read, from the "
    'store (`loopStale: "true"`) when Loop is slower. README: "Gladly: the Lookup Adaptor".',
    response_model=LookupAnswer,
    response_model_exclude_none=True,
    responses=ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": LookupIn.model_json_schema()}},
        }
    },
)
async def gladly_lookup(request: Request, settings: SettingsDep, desk: DeskDep) -> JSONResponse:
    body = await request.body()
    try:
        _authenticate(request, settings, body)
    except Unauthorized as exc:
        reason = exc.reason if isinstance(exc, SignatureRejected) else "basic_auth"
        log.warning("gladly.lookup_refused", reason=reason)
        response = error_response(401, exc.code, exc.message, exc.details)
        if basic_credentials(settings) is not None:
            response.headers["WWW-Authenticate"] = f'Basic realm="{REALM}"'
        return response
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise HTTPException(400, "the body is not JSON") from None
    answer = await desk.answer(parse_lookup(data))
    return JSONResponse(answer.model_dump(mode="json", exclude_none=True))
