"""The one HTTP path to Loop: auth, timeouts, retries, limits, typed errors and logs.

Both clients (Returns REST, Order Tracking GraphQL) are thin wrappers over
`UpstreamHTTP.request`, so every upstream call gets the same behaviour.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
import stamina
import structlog

from loopdesk.domain.upstream_errors import (
    action_failure_message,
    upstream_message,
    validation_errors,
)
from loopdesk.errors import (
    InvalidUpstreamData,
    LoopAuthError,
    LoopError,
    LoopNotFound,
    LoopRateLimited,
    LoopRejected,
    LoopUnavailable,
    LoopValidationError,
)
from loopdesk.loop.limits import KeyRateLimit, LocalWindow, Ticket, token_fingerprint
from loopdesk.loop.redact import redact_text
from loopdesk.loop.retry_policy import (
    RetryableResponse,
    is_retryable_status,
    parse_retry_after,
    request_never_sent,
    retry_decision,
)
from loopdesk.loop.stats import UpstreamStats
from loopdesk.loop.transport import AiohttpTransport
from loopdesk.settings import Settings

log = structlog.get_logger("loopdesk.loop")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Non-JSON error bodies longer than this (proxy HTML pages...) are not a message.
_MAX_TEXT_BODY = 300
# Shorter "tokens" (test doubles) would make scrubbing mangle ordinary words.
_MIN_SCRUBBED_SECRET = 8
# Idle connections to Loop stay open this long (httpx's default is 5 s): lookups a
# sidebar opens minutes apart reuse them instead of paying TCP and TLS set-up again.
KEEPALIVE_S = 120.0


@dataclass(frozen=True)
class UpstreamResponse:
    status: int
    body: Any  # decoded JSON; None when the body was empty (204...)


class InvalidLoopBody(InvalidUpstreamData):
    """A 2xx body that is not JSON or not the documented shape, with its origin."""

    def __init__(self, message: str, *, status: int, endpoint: str, body: Any = None) -> None:
        super().__init__(message, details={"upstreamStatus": status, "endpoint": endpoint})
        self.status = status
        self.endpoint = endpoint
        self.body = body


@dataclass
class _Attempts:
    """Attempts sent so far for one request, across 429 pauses and stamina's retries,
    and the deadline of the whole call, which Loop's 429s may push back."""

    n: int = 0
    bound: asyncio.Timeout | None = None
    # Loop's last 429, while it keeps answering one: what a call cut short then heard.
    limited: RetryableResponse | None = None


class UpstreamHTTP:
    """One `httpx.AsyncClient` plus the retry, rate and concurrency policy around it."""

    def __init__(
        self,
        *,
        service: str,
        base_url: str,
        token: str,
        auth_header: str,
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None = None,
        rate_limit: tuple[int, float] | None = None,
    ) -> None:
        """`rate_limit`: (requests, seconds) of an upstream other than Loop."""
        self.service = service
        self.stats = UpstreamStats()
        self._settings = settings
        self._fingerprint = token_fingerprint(token)
        self._secret = token if len(token) >= _MIN_SCRUBBED_SECRET else None
        # Per client: bounds what one client can have in flight, whatever the callers do.
        self._semaphore = asyncio.Semaphore(settings.upstream_concurrency)
        # Per API key: in this process, or across workers and machines on Redis.
        limit, period_s = rate_limit or (None, None)
        self._rate = KeyRateLimit(self._fingerprint, settings, limit=limit, period_s=period_s)
        read = settings.http_read_timeout_s
        self._attempt_deadline = settings.http_connect_timeout_s + 2 * read
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={auth_header: token, "Accept": "application/json"},
            timeout=httpx.Timeout(
                connect=settings.http_connect_timeout_s, read=read, write=read, pool=read
            ),
            # As many idle connections kept as requests may be in flight at once.
            limits=httpx.Limits(
                max_connections=max(100, settings.upstream_concurrency),
                max_keepalive_connections=settings.upstream_concurrency,
                keepalive_expiry=KEEPALIVE_S,
            ),
            transport=transport or _transport(settings),
        )
        # What the client adds to each request, made once: `_exchange` sends through
        # its transport directly. Paths are joined to the base as the client joins them.
        self._base_url = str(self._client.base_url).rstrip("/")
        self._extensions = {"timeout": self._client.timeout.as_dict()}

    def limiter(self) -> LocalWindow:
        """The in-process window shared by every client using this API key (on this loop)."""
        return self._rate.local()

    async def aclose(self) -> None:
        await self._client.aclose()
        await self._rate.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        json_body: Any = None,
        action: bool = False,
        idempotent: bool | None = None,
    ) -> UpstreamResponse:
        """Send with retries; return a 2xx answer decoded, or raise a typed `LoopError`.

        `path` may carry a pre-encoded query string (sent as is). `action` switches
        error messages to the peer's `unable to execute action: '...'` wording.
        `idempotent` defaults from the method; a non-idempotent request is never
        repeated once it may have reached the upstream, and a failure after which it
        may have been applied says so (`details.outcomeUnknown`).
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        budget = self._settings.http_retry_timeout_s
        attempts = _Attempts()
        last: RetryableResponse | httpx.TransportError | None = None
        in_flight = False
        try:
            # The budget bounds the whole call: attempts, waits, queueing for a slot.
            # Only Loop's own 429s stretch it (`_send`), up to `loop_rate_limit_max_wait_s`.
            async with asyncio.timeout(budget) as bound:
                attempts.bound = bound

                def decide(exc: Exception) -> bool | float:
                    verdict = retry_decision(
                        exc,
                        idempotent=idempotent,
                        max_retry_after=self._settings.http_max_retry_after_s,
                    )
                    # A wait that ends past the budget cannot bring an answer in time.
                    when = bound.when()
                    now = asyncio.get_running_loop().time()
                    if not isinstance(verdict, bool) and when is not None and now + verdict >= when:
                        return False
                    return verdict

                async def attempt_once() -> httpx.Response:
                    nonlocal in_flight, last
                    in_flight = True
                    try:
                        sent = await self._send(method, path, endpoint, json_body, attempts)
                    except (RetryableResponse, httpx.TransportError) as exc:
                        in_flight, last = False, exc
                        raise
                    in_flight = False
                    return sent

                # Most calls succeed at once, and a retry context costs about a tenth of
                # a request's CPU: the first attempt runs outside it. Its failure is
                # then raised again as the context's first attempt, so stamina judges
                # it, waits and counts exactly as if it had run inside.
                try:
                    response = await attempt_once()
                except (RetryableResponse, httpx.TransportError) as exc:
                    first: BaseException | None = exc
                    async for attempt in stamina.retry_context(
                        on=decide, attempts=self._settings.http_retry_attempts, timeout=budget
                    ):
                        with attempt:
                            if first is not None:
                                failed, first = first, None
                                raise failed from failed.__cause__  # as it was
                            response = await attempt_once()
        except TimeoutError:
            # Spent during a wait, the last failure stands. Spent during an attempt: a read
            # says what Loop last answered, if anything; a write cut short may have been
            # applied, which only a timeout says (`outcomeUnknown`).
            if attempts.limited is not None and (last is None or in_flight):
                last = attempts.limited
            elif last is None or (in_flight and not idempotent):
                last = httpx.ReadTimeout(f"{self.service}: retry budget spent")
            raise self._failure(
                last, endpoint=endpoint, action=action, idempotent=idempotent, attempts=attempts.n
            ) from None
        except (RetryableResponse, httpx.TransportError) as exc:
            error = self._failure(
                exc, endpoint=endpoint, action=action, idempotent=idempotent, attempts=attempts.n
            )
            raise error from (None if isinstance(exc, RetryableResponse) else exc)
        return self._decode(response, endpoint=endpoint, action=action, attempts=attempts.n)

    def _failure(
        self,
        exc: RetryableResponse | httpx.TransportError,
        *,
        endpoint: str,
        action: bool,
        idempotent: bool,
        attempts: int,
    ) -> LoopError:
        """The typed error for the last failure of a call, logged once."""
        error: LoopError
        if isinstance(exc, RetryableResponse):
            error = self.status_error(
                exc.status,
                exc.body,
                exc.reason,
                endpoint=endpoint,
                action=action,
                retry_after=exc.retry_after,
            )
            if not idempotent and exc.status >= 500:
                # A gateway's 502/503/504 (or Loop's 500) says nothing of the write itself.
                error.details["outcomeUnknown"] = True
        else:
            error = self._transport_error(
                exc, endpoint=endpoint, action=action, idempotent=idempotent
            )
        self._log_failure(error, attempts)
        return error

    async def _send(
        self, method: str, path: str, endpoint: str, json_body: Any, attempts: _Attempts
    ) -> httpx.Response:
        """One attempt, repeated through the key's pauses while Loop answers 429.

        Loop refuses a 429 before doing any work, so writes are repeated too. The
        request waits at most `loop_rate_limit_max_wait_s` in all; a `Retry-After`
        beyond `http_max_retry_after_s` is not waited for at all.
        """
        settings = self._settings
        deadline = time.monotonic() + settings.loop_rate_limit_max_wait_s
        while True:
            attempts.n += 1
            if attempts.n > 1:
                self.stats.record_retry(endpoint)
            response, ticket = await self._attempt(method, path, endpoint, json_body, attempts.n)
            if response.status_code != 429:
                attempts.limited = None
                break
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            attempts.limited = RetryableResponse(
                429, _error_body(response), response.reason_phrase, retry_after
            )
            paused = await self._rate.rate_limited(ticket, retry_after)
            too_long = retry_after is not None and retry_after > settings.http_max_retry_after_s
            if too_long or time.monotonic() + paused > deadline:
                break
            _extend(attempts.bound, paused)
        if is_retryable_status(response.status_code):
            raise RetryableResponse(
                response.status_code,
                _error_body(response),
                response.reason_phrase,
                parse_retry_after(response.headers.get("Retry-After")),
            )
        return response

    async def _attempt(
        self, method: str, path: str, endpoint: str, json_body: Any, attempt_no: int
    ) -> tuple[httpx.Response, Ticket]:
        # Semaphore first: a request waiting on the rate limit sends as soon as it gets
        # a slot, so the rate actually seen upstream stays within the limit.
        async with self._semaphore:
            ticket = await self._rate.acquire()
            started = time.monotonic()
            status: int | None = None  # None: no answer arrived
            try:
                # httpx enforces its timeouts per socket operation; an in-process
                # transport (the sandbox over ASGI) has none, so bound the attempt too.
                async with asyncio.timeout(self._attempt_deadline):
                    response = await self._exchange(method, path, json_body)
                status = response.status_code
            except TimeoutError:
                exc_ = httpx.ReadTimeout(f"{self.service} attempt deadline passed")
                self._log_attempt(endpoint, method, "timeout", attempt_no, started)
                raise exc_ from None
            except httpx.TransportError as exc:
                self._log_attempt(endpoint, method, _failure_kind(exc), attempt_no, started)
                raise
            finally:
                # Counted in the window from the moment the answer arrived.
                await self._rate.release(ticket, status=status)
            self._log_attempt(endpoint, method, str(response.status_code), attempt_no, started)
        return response, ticket

    async def _exchange(self, method: str, path: str, json_body: Any) -> httpx.Response:
        """One request and its whole answer, through the client's own transport (the
        one the client would pick: mounts, proxies and test mocks included), without
        the client's per-request machinery (auth flows, redirects, cookies), which
        Loop's APIs do not use and which costs about a quarter of a request's CPU."""
        request = httpx.Request(
            method,
            self._base_url + "/" + path.lstrip("/"),
            headers=self._client.headers,
            json=json_body,
            extensions=self._extensions,
        )
        transport = self._client._transport_for_url(request.url)
        response = await transport.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    def _decode(
        self, response: httpx.Response, *, endpoint: str, action: bool, attempts: int
    ) -> UpstreamResponse:
        status = response.status_code
        if not 200 <= status < 300:
            error = self.status_error(
                status,
                _error_body(response),
                response.reason_phrase,
                endpoint=endpoint,
                action=action,
            )
            self._log_failure(error, attempts)
            raise error
        if not response.content.strip():
            return UpstreamResponse(status, None)
        try:
            body = json.loads(response.content)
        except ValueError:
            error_ = InvalidLoopBody(
                f"{self.service} sent a response that is not JSON",
                status=status,
                endpoint=endpoint,
                body=response.text[:_MAX_TEXT_BODY],
            )
            log.warning("loop.invalid_body", endpoint=endpoint, status=status)
            raise error_ from None
        return UpstreamResponse(status, body)

    def status_error(
        self,
        status: int,
        body: Any,
        reason: str,
        *,
        endpoint: str,
        action: bool = False,
        retry_after: float | None = None,
    ) -> LoopError:
        """The typed error for a non-2xx answer, worded the way the peer words it."""
        fallback = reason or f"HTTP {status}"
        if status == 422:
            errors = validation_errors(body, fallback=fallback)
            errors = [{"message": self._scrub(e["message"])} for e in errors]
            return LoopValidationError(
                errors[0]["message"], errors=errors, status=status, body=body, endpoint=endpoint
            )
        text = (action_failure_message if action else upstream_message)(body, fallback=fallback)
        message = self._scrub(text)
        if status == 429:
            return LoopRateLimited(
                message, retry_after=retry_after, status=status, body=body, endpoint=endpoint
            )
        kind: type[LoopError]
        if status in (401, 403):
            kind = LoopAuthError
        elif status == 404:
            kind = LoopNotFound
        elif status >= 500:
            kind = LoopUnavailable
        else:
            kind = LoopRejected
        return kind(message, status=status, body=body, endpoint=endpoint)

    def _transport_error(
        self, exc: httpx.TransportError, *, endpoint: str, action: bool, idempotent: bool
    ) -> LoopUnavailable:
        if isinstance(exc, httpx.TimeoutException):
            text = f"{self.service} did not answer in time"
        else:
            text = f"{self.service} could not be reached"
        message = action_failure_message(None, fallback=text) if action else text
        details: dict[str, Any] = {}
        if not idempotent and not request_never_sent(exc):
            # A write that may have been applied: callers must not assume it failed.
            details["outcomeUnknown"] = True
        return LoopUnavailable(message, endpoint=endpoint, details=details)

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "[redacted]") if self._secret else text

    def _log_attempt(
        self, endpoint: str, method: str, outcome: str, attempt_no: int, started: float
    ) -> None:
        elapsed_ms = (time.monotonic() - started) * 1000
        self.stats.record(endpoint, outcome, elapsed_ms)
        server_side = not outcome.isdigit() or int(outcome) >= 500 or outcome == "429"
        (log.warning if server_side else log.info)(
            "loop.attempt",
            service=self.service,
            endpoint=endpoint,
            method=method,
            status=outcome,
            attempt=attempt_no,
            elapsed_ms=round(elapsed_ms, 1),
        )

    def _log_failure(self, error: LoopError, attempts: int) -> None:
        # 4xx are the caller's business; 5xx, 429 and transport failures are ops'.
        server_side = error.status is None or error.status >= 500 or error.status == 429
        (log.warning if server_side else log.info)(
            "loop.failed",
            service=self.service,
            endpoint=error.endpoint,
            status=error.status,
            code=error.code,
            attempts=attempts,
            message=redact_text(self._scrub(error.message)),
        )


def _transport(settings: Settings) -> httpx.AsyncBaseTransport | None:
    """None: httpx's own pool, built from the client's `limits`."""
    if settings.upstream_transport == "httpx":
        return None
    return AiohttpTransport(
        max_connections=max(100, settings.upstream_concurrency), keepalive_s=KEEPALIVE_S
    )


def _extend(bound: asyncio.Timeout | None, seconds: float) -> None:
    """Push the call's deadline back so a pause Loop asked for (429) fits in it."""
    if bound is None:
        return
    wanted = asyncio.get_running_loop().time() + seconds + 1.0
    when = bound.when()
    if when is not None and when < wanted:
        bound.reschedule(wanted)


def _error_body(response: httpx.Response) -> Any:
    """An error body decoded for its message: JSON, else short plain text, else None."""
    text = response.text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text if len(text) <= _MAX_TEXT_BODY and not text.startswith("<") else None


def _failure_kind(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connect_error"
    return "transport_error"
