"""The shared upstream HTTP core: retries, Retry-After, limits, typed errors, logs."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx
import stamina
from structlog.testing import capture_logs

from loopdesk.errors import (
    InvalidUpstreamData,
    LoopAuthError,
    LoopNotFound,
    LoopRateLimited,
    LoopRejected,
    LoopUnavailable,
    LoopValidationError,
)
from loopdesk.loop import limits, redact_email, redact_text
from loopdesk.loop.http import UpstreamHTTP
from loopdesk.loop.retry_policy import RetryableResponse, parse_retry_after, retry_decision
from loopdesk.settings import Settings

BASE = "https://loop.test"
SECRET = "sk-live-very-secret-token-42"


def make_settings(**overrides: Any) -> Settings:
    return Settings(loop_api_token="t", **overrides)


def make_http(token: str = SECRET, **overrides: Any) -> UpstreamHTTP:
    return UpstreamHTTP(
        service="Loop Returns",
        base_url=BASE,
        token=token,
        auth_header="X-Authorization",
        settings=make_settings(**overrides),
    )


pytestmark = pytest.mark.usefixtures("instant_retries")


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def http() -> AsyncIterator[UpstreamHTTP]:
    client = make_http()
    yield client
    await client.aclose()


# Retry policy, decided without I/O ------------------------------------------


def test_parse_retry_after_seconds_and_dates() -> None:
    now = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_retry_decision_returns_the_capped_retry_after_wait() -> None:
    def decide(exc: Exception, idempotent: bool = True) -> bool | float:
        return retry_decision(exc, idempotent=idempotent, max_retry_after=30.0)

    assert decide(RetryableResponse(429, None, "", retry_after=2.5)) == 2.5
    assert decide(RetryableResponse(429, None, "", retry_after=600)) == 30.0
    assert decide(RetryableResponse(429, None, "")) is True  # exponential backoff
    assert decide(RetryableResponse(500, None, "")) is True
    request = httpx.Request("POST", BASE)
    # A write is repeated only when the upstream surely did not apply it.
    assert decide(RetryableResponse(500, None, ""), idempotent=False) is False
    assert decide(RetryableResponse(503, None, ""), idempotent=False) is True
    assert decide(httpx.ReadTimeout("t", request=request), idempotent=False) is False
    assert decide(httpx.ConnectTimeout("t", request=request), idempotent=False) is True
    assert decide(httpx.ConnectError("c", request=request), idempotent=False) is True
    assert decide(httpx.ReadTimeout("t", request=request)) is True
    assert decide(ValueError("not ours")) is False


# Retries -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_retries_5xx_until_success(
    http: UpstreamHTTP, mock: respx.MockRouter, status: int
) -> None:
    route = mock.get("/x").mock(
        side_effect=[httpx.Response(status), httpx.Response(status), httpx.Response(200, json=[1])]
    )
    response = await http.request("GET", "/x", endpoint="x.get")
    assert (response.status, response.body) == (200, [1])
    assert route.call_count == 3


async def test_5xx_after_attempts_is_unavailable_with_upstream_message(
    http: UpstreamHTTP, mock: respx.MockRouter
) -> None:
    route = mock.get("/x").mock(return_value=httpx.Response(503, json={"message": "Down"}))
    with pytest.raises(LoopUnavailable) as info:
        await http.request("GET", "/x", endpoint="x.get")
    assert route.call_count == 3
    err = info.value
    assert (err.message, err.status, err.body, err.endpoint) == (
        "Down",
        503,
        {"message": "Down"},
        "x.get",
    )
    assert err.details["upstreamStatus"] == 503


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (httpx.ReadTimeout("slow"), "Loop Returns did not answer in time"),
        (httpx.ConnectTimeout("slow"), "Loop Returns did not answer in time"),
        (httpx.ConnectError("refused"), "Loop Returns could not be reached"),
    ],
)
async def test_transport_failures_are_retried_then_unavailable(
    http: UpstreamHTTP, mock: respx.MockRouter, failure: Exception, message: str
) -> None:
    route = mock.get("/x").mock(side_effect=failure)
    with pytest.raises(LoopUnavailable) as info:
        await http.request("GET", "/x", endpoint="x.get")
    assert route.call_count == 3
    assert info.value.message == message
    assert info.value.status is None
    assert info.value.endpoint == "x.get"


async def test_timeout_then_success(http: UpstreamHTTP, mock: respx.MockRouter) -> None:
    route = mock.get("/x").mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200, json={})]
    )
    assert (await http.request("GET", "/x", endpoint="x.get")).body == {}
    assert route.call_count == 2


async def test_429_without_retry_after_is_rate_limited_after_attempts(
    http: UpstreamHTTP, mock: respx.MockRouter
) -> None:
    body = {"message": "Too Many Attempts."}
    route = mock.get("/x").mock(return_value=httpx.Response(429, json=body))
    with pytest.raises(LoopRateLimited) as info:
        await http.request("GET", "/x", endpoint="x.get")
    assert route.call_count == 3
    assert info.value.message == "Too Many Attempts."
    assert info.value.retry_after is None


async def test_429_honours_retry_after(mock: respx.MockRouter) -> None:
    stamina.set_testing(False)  # real waits: the Retry-After value is what is slept
    http = make_http(http_retry_attempts=2)
    route = mock.get("/x").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0.3"}),
            httpx.Response(200, json=True),
        ]
    )
    started = time.monotonic()
    assert (await http.request("GET", "/x", endpoint="x.get")).body is True
    assert 0.3 <= time.monotonic() - started < 1.0  # not stamina's own backoff (>= 0.1 + jitter)
    assert route.call_count == 2
    await http.aclose()


async def test_429_retry_after_is_capped_and_reported(mock: respx.MockRouter) -> None:
    stamina.set_testing(False)
    http = make_http(http_retry_attempts=2, http_max_retry_after_s=0.05)
    route = mock.get("/x").mock(return_value=httpx.Response(429, headers={"Retry-After": "3600"}))
    started = time.monotonic()
    with pytest.raises(LoopRateLimited) as info:
        await http.request("GET", "/x", endpoint="x.get")
    assert time.monotonic() - started < 0.5
    assert route.call_count == 2
    assert info.value.retry_after == 3600
    assert info.value.details["retryAfter"] == 3600
    await http.aclose()


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, LoopRejected),
        (401, LoopAuthError),
        (403, LoopAuthError),
        (404, LoopNotFound),
        (409, LoopRejected),
        (422, LoopValidationError),
    ],
)
async def test_no_retry_on_4xx(
    http: UpstreamHTTP, mock: respx.MockRouter, status: int, error_type: type[Exception]
) -> None:
    route = mock.get("/x").mock(return_value=httpx.Response(status, json={"message": "nope"}))
    with pytest.raises(error_type) as info:
        await http.request("GET", "/x", endpoint="x.get")
    assert route.call_count == 1
    assert str(info.value) == "nope"


async def test_422_carries_the_structured_errors(
    http: UpstreamHTTP, mock: respx.MockRouter
) -> None:
    body = {"message": "The value field is required.", "errors": {"value": ["x"]}}
    mock.post("/x").mock(return_value=httpx.Response(422, json=body))
    with pytest.raises(LoopValidationError) as info:
        await http.request("POST", "/x", endpoint="x.post", json_body={}, action=True)
    assert info.value.errors == [{"message": "The value field is required."}]
    assert info.value.details["errors"] == info.value.errors
    assert info.value.body == body


async def test_non_json_error_bodies(http: UpstreamHTTP, mock: respx.MockRouter) -> None:
    mock.get("/text").mock(return_value=httpx.Response(400, text="Bad thing"))
    mock.get("/html").mock(return_value=httpx.Response(400, text="<html>...</html>"))
    with pytest.raises(LoopRejected, match=r"^Bad thing$"):
        await http.request("GET", "/text", endpoint="x.text")
    with pytest.raises(LoopRejected, match=r"^Bad Request$"):  # the reason phrase
        await http.request("GET", "/html", endpoint="x.html")


# Non-idempotent writes ---------------------------------------------------------


async def test_post_is_not_retried_after_a_read_timeout(
    http: UpstreamHTTP, mock: respx.MockRouter
) -> None:
    route = mock.post("/w").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(LoopUnavailable) as info:
        await http.request("POST", "/w", endpoint="w", json_body={}, action=True)
    assert route.call_count == 1
    assert info.value.message == "unable to execute action: 'Loop Returns did not answer in time'"
    assert info.value.details["outcomeUnknown"] is True


@pytest.mark.parametrize(
    "first",
    [httpx.ConnectError("refused"), httpx.Response(429), httpx.Response(502), httpx.Response(503)],
)
async def test_post_is_retried_when_surely_not_applied(
    http: UpstreamHTTP, mock: respx.MockRouter, first: Any
) -> None:
    route = mock.post("/w").mock(side_effect=[first, httpx.Response(200, json=True)])
    assert (await http.request("POST", "/w", endpoint="w", json_body={})).body is True
    assert route.call_count == 2


async def test_post_is_not_retried_on_500(http: UpstreamHTTP, mock: respx.MockRouter) -> None:
    route = mock.post("/w").mock(return_value=httpx.Response(500, json={"message": "Server Error"}))
    with pytest.raises(LoopUnavailable) as info:
        await http.request("POST", "/w", endpoint="w", json_body={}, action=True)
    assert route.call_count == 1
    assert info.value.message == "unable to execute action: 'Server Error'"


async def test_read_sent_as_post_can_opt_into_retries(
    http: UpstreamHTTP, mock: respx.MockRouter
) -> None:
    route = mock.post("/q").mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200, json=1)]
    )
    assert (await http.request("POST", "/q", endpoint="q", idempotent=True)).body == 1
    assert route.call_count == 2


# Bodies --------------------------------------------------------------------------


async def test_malformed_json_is_invalid_upstream_data(
    http: UpstreamHTTP, mock: respx.MockRouter
) -> None:
    mock.get("/x").mock(return_value=httpx.Response(200, text='{"returns": ['))
    with pytest.raises(InvalidUpstreamData) as info:
        await http.request("GET", "/x", endpoint="x.get")
    assert info.value.details == {"upstreamStatus": 200, "endpoint": "x.get"}


async def test_empty_success_body_is_none(http: UpstreamHTTP, mock: respx.MockRouter) -> None:
    mock.delete("/x").mock(return_value=httpx.Response(204))
    response = await http.request("DELETE", "/x", endpoint="x.delete")
    assert (response.status, response.body) == (204, None)


# Limits ----------------------------------------------------------------------------


async def test_rate_limit_makes_the_sixth_request_wait(
    mock: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 5 per 5 s: a burst of 5 passes at once, the 6th waits ~1 s for the bucket to drain
    # (wide margins: a loaded machine slows the burst without hiding the wait).
    monkeypatch.setattr(limits, "RATE_PERIOD_S", 5.0)
    http = make_http(token="rate-limit-test-token", loop_rate_limit_per_minute=5)
    route = mock.get("/x").mock(return_value=httpx.Response(200, json=[]))
    started = time.monotonic()
    for _ in range(5):
        await http.request("GET", "/x", endpoint="x.get")
    burst = time.monotonic() - started
    sixth_started = time.monotonic()
    await http.request("GET", "/x", endpoint="x.get")
    assert burst < 0.5
    assert time.monotonic() - sixth_started >= 0.4
    assert route.call_count == 6
    await http.aclose()


async def test_rate_limit_is_shared_per_token() -> None:
    a, b, other = make_http(token="same-token-1234"), make_http("same-token-1234"), make_http()
    assert a.limiter() is b.limiter()
    assert a.limiter() is not other.limiter()
    assert a.limiter().max_rate == 300
    for client in (a, b, other):
        await client.aclose()


def test_limiter_registry_never_holds_the_token() -> None:
    fingerprint = limits.token_fingerprint(SECRET)
    assert SECRET not in fingerprint
    assert fingerprint == limits.token_fingerprint(SECRET)


async def test_semaphore_bounds_requests_in_flight(mock: respx.MockRouter) -> None:
    http = make_http(upstream_concurrency=2)
    in_flight = peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return httpx.Response(200, json=[])

    route = mock.get("/x").mock(side_effect=slow)
    await asyncio.gather(*(http.request("GET", "/x", endpoint="x.get") for _ in range(6)))
    assert route.call_count == 6
    assert peak == 2
    await http.aclose()


# Secrets, logs, stats ----------------------------------------------------------------


async def test_auth_header_sent_and_token_never_in_errors_or_logs(
    http: UpstreamHTTP, mock: respx.MockRouter
) -> None:
    route = mock.get("/x").mock(
        return_value=httpx.Response(
            401, json={"message": f"Unauthorized key {SECRET} for jane.doe@example.com"}
        )
    )
    with capture_logs() as logs, pytest.raises(LoopAuthError) as info:
        await http.request("GET", "/x", endpoint="x.get")
    assert route.calls.last.request.headers["X-Authorization"] == SECRET
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value.details)
    assert logs, "failures are logged"
    assert SECRET not in repr(logs)
    assert "jane.doe@example.com" not in repr(logs)
    assert "j***@example.com" in repr(logs)


async def test_attempts_are_logged_and_counted(http: UpstreamHTTP, mock: respx.MockRouter) -> None:
    mock.get("/x").mock(
        side_effect=[httpx.Response(503), httpx.ReadTimeout("t"), httpx.Response(200)]
    )
    with capture_logs() as logs:
        await http.request("GET", "/x", endpoint="x.get")
    attempts = [e for e in logs if e["event"] == "loop.attempt"]
    assert [(e["status"], e["attempt"]) for e in attempts] == [
        ("503", 1),
        ("timeout", 2),
        ("200", 3),
    ]
    assert all(e["endpoint"] == "x.get" and e["elapsed_ms"] >= 0 for e in attempts)
    assert http.stats.by_endpoint() == {"x.get": {"200": 1, "503": 1, "timeout": 1}}
    assert http.stats.retries["x.get"] == 2
    assert SECRET not in repr(logs)  # stamina's own retry logs included


def test_redact_email() -> None:
    assert redact_email("jane.doe@example.com") == "j***@example.com"
    assert redact_email("not-an-email") == "***"
    assert redact_text("from a@b.co and jane+x@shop.example.com") == (
        "from a***@b.co and j***@shop.example.com"
    )
