"""The shared upstream HTTP core: retries, Retry-After, limits, typed errors, logs."""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import random
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx
import stamina
from structlog.testing import capture_logs

from loopdesk.errors import (
    ConfigError,
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
from loopdesk.loop.retry_policy import (
    RetryableResponse,
    parse_retry_after,
    rate_limit_pause,
    retry_decision,
)
from loopdesk.runtime import Upstream
from loopdesk.sandbox.faults import FaultController
from loopdesk.settings import Settings

BASE = "https://loop.test"
SECRET = "sk-live-very-secret-token-42"
SINCE = dt.date(2020, 1, 1)


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
    client = make_http(**FAST_429)
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

    assert decide(RetryableResponse(503, None, "", retry_after=2.5)) == 2.5
    assert decide(RetryableResponse(503, None, "", retry_after=600)) == 30.0
    assert decide(RetryableResponse(500, None, "")) is True  # exponential backoff
    # A 429 reaches stamina only once the key's pauses have run out: final.
    assert decide(RetryableResponse(429, None, "")) is False
    request = httpx.Request("POST", BASE)
    # A write is repeated only when the upstream surely did not apply it.
    for status in (500, 502, 503, 504):
        assert decide(RetryableResponse(status, None, ""), idempotent=False) is False
    assert decide(httpx.ReadTimeout("t", request=request), idempotent=False) is False
    assert decide(httpx.WriteError("w", request=request), idempotent=False) is False
    assert decide(httpx.ConnectTimeout("t", request=request), idempotent=False) is True
    assert decide(httpx.PoolTimeout("t", request=request), idempotent=False) is True
    assert decide(httpx.ConnectError("c", request=request), idempotent=False) is True
    assert decide(httpx.ReadTimeout("t", request=request)) is True
    assert decide(ValueError("not ours")) is False


def test_rate_limit_pause_doubles_to_a_ceiling_or_follows_retry_after() -> None:
    def pause(level: int, retry_after: float | None = None) -> float:
        return rate_limit_pause(level, retry_after, first_s=1, max_s=15, max_retry_after=30)

    assert [pause(n) for n in range(1, 8)] == [1, 2, 4, 8, 15, 15, 15]
    # With the defaults a request keeps trying for about a minute: 1+2+4+8+15+15+15.
    assert sum(pause(n) for n in range(1, 8)) == 60
    assert pause(3, retry_after=5) == 5
    assert pause(1, retry_after=600) == 30


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


async def test_a_request_is_the_one_the_client_would_build() -> None:
    # Sent through the client's transport directly: the same URL joining (a base with a
    # path, a path with its own query), headers, JSON body and timeouts as
    # `httpx.AsyncClient.request` would give.
    http = UpstreamHTTP(
        service="Loop Returns",
        base_url=f"{BASE}/shop-api/",
        token=SECRET,
        auth_header="X-Authorization",
        settings=make_settings(http_connect_timeout_s=1.5, http_read_timeout_s=4.0),
    )
    path = "/api/v2/returns?customer_email=a%2Bb%40example.com&limit=10"
    with respx.mock(assert_all_called=True) as router:
        route = router.post(url__startswith=f"{BASE}/shop-api/api/v2/returns").mock(
            return_value=httpx.Response(200, json={"ok": True})
        )
        answer = await http.request("POST", path, endpoint="x.post", json_body={"n": 1})
    await http.aclose()
    assert answer.body == {"ok": True}
    sent = route.calls.last.request
    expected = httpx.AsyncClient(
        base_url=f"{BASE}/shop-api/",
        headers={"X-Authorization": SECRET, "Accept": "application/json"},
        timeout=httpx.Timeout(connect=1.5, read=4.0, write=4.0, pool=4.0),
    ).build_request("POST", path, json={"n": 1})
    assert str(sent.url) == str(expected.url)
    assert sent.url.query == b"customer_email=a%2Bb%40example.com&limit=10"
    assert sent.headers.multi_items() == expected.headers.multi_items()
    assert sent.content == expected.content == b'{"n":1}'
    assert sent.extensions["timeout"] == {"connect": 1.5, "read": 4.0, "write": 4.0, "pool": 4.0}
    # A path without its leading slash joins the base as the client joins it.
    with respx.mock(assert_all_called=True) as router:
        bare = router.get(f"{BASE}/shop-api/api/v1/x").mock(return_value=httpx.Response(200))
        http = UpstreamHTTP(
            service="Loop Returns",
            base_url=f"{BASE}/shop-api",
            token=SECRET,
            auth_header="X-Authorization",
            settings=make_settings(),
        )
        await http.request("GET", "api/v1/x", endpoint="x.get")
        await http.aclose()
    assert bare.call_count == 1


async def test_a_call_answered_at_once_builds_no_retry_context(
    http: UpstreamHTTP, mock: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    import loopdesk.loop.http as upstream_http

    contexts: list[object] = []
    real = upstream_http.stamina.retry_context

    def counted(*args: Any, **kwargs: Any) -> Any:
        contexts.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(upstream_http.stamina, "retry_context", counted)
    mock.get("/ok").mock(return_value=httpx.Response(200, json=[]))
    mock.get("/flaky").mock(side_effect=[httpx.Response(503), httpx.Response(200, json=[])])
    await http.request("GET", "/ok", endpoint="x.get")
    assert contexts == []
    # A failure does enter one, and the whole call still has stamina's 3 attempts.
    await http.request("GET", "/flaky", endpoint="x.get")
    assert len(contexts) == 1
    assert mock.routes[1].call_count == 2


async def test_the_first_retry_waits_for_stamina_backoff(mock: respx.MockRouter) -> None:
    # Outside stamina's testing mode: the first attempt runs before any retry context,
    # yet its failure is still followed by stamina's wait (0.1 s and jitter at least).
    stamina.set_testing(False)
    arrivals: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        arrivals.append(time.monotonic())
        return httpx.Response(503 if len(arrivals) == 1 else 200, json=[])

    mock.get("/x").mock(side_effect=answer)
    client = make_http()
    try:
        await client.request("GET", "/x", endpoint="x.get")
    finally:
        await client.aclose()
        stamina.set_testing(True, attempts=3)
    assert len(arrivals) == 2
    assert arrivals[1] - arrivals[0] >= 0.1


# Fast pauses for tests: 10 ms doubling to 40 ms, a request gives up after 0.3 s.
FAST_429 = {
    "loop_rate_limit_backoff_s": 0.01,
    "loop_rate_limit_max_backoff_s": 0.04,
    "loop_rate_limit_max_wait_s": 0.3,
}


async def test_429_without_retry_after_backs_off_then_gives_up(mock: respx.MockRouter) -> None:
    http = make_http(token="backoff-gives-up-token", **FAST_429)
    body = {"message": "Too Many Attempts."}
    route = mock.get("/x").mock(return_value=httpx.Response(429, json=body))
    started = time.monotonic()
    with capture_logs() as logs, pytest.raises(LoopRateLimited) as info:
        await http.request("GET", "/x", endpoint="x.get")
    elapsed = time.monotonic() - started
    # Pauses of 10, 20, 40, 40... ms, until the next would end past the 0.3 s patience:
    # not stamina's 3 attempts within a few hundredths of a second.
    assert 0.2 <= elapsed < 1.0
    assert route.call_count >= 6
    assert info.value.message == "Too Many Attempts."
    assert info.value.retry_after is None
    pauses = [e["paused_s"] for e in logs if e["event"] == "loop.rate_limited"]
    assert pauses[:4] == [0.01, 0.02, 0.04, 0.04]
    await http.aclose()


async def test_429_without_retry_after_recovers(mock: respx.MockRouter) -> None:
    http = make_http(token="backoff-recovers-token", **FAST_429)
    limited = httpx.Response(429, json={"message": "Too Many Attempts."})
    route = mock.get("/x").mock(side_effect=[limited, limited, limited, httpx.Response(200)])
    await http.request("GET", "/x", endpoint="x.get")
    assert route.call_count == 4
    assert http.limiter().level == 0  # a success ends the run of 429s
    await http.aclose()


def test_default_backoff_keeps_trying_for_about_a_minute() -> None:
    # The default settings: the pauses one request sits through before it gives up.
    settings = make_settings()
    waited, level = 0.0, 0
    while True:
        level += 1
        pause = rate_limit_pause(
            level,
            None,
            first_s=settings.loop_rate_limit_backoff_s,
            max_s=settings.loop_rate_limit_max_backoff_s,
            max_retry_after=settings.http_max_retry_after_s,
        )
        if waited + pause > settings.loop_rate_limit_max_wait_s:
            break
        waited += pause
    assert (waited, level - 1) == (60.0, 7)


async def test_429_pauses_every_request_sharing_the_key(mock: respx.MockRouter) -> None:
    # Two clients with one key: the first's 429 holds the other's request back too,
    # although the other never saw a 429 itself.
    token = "shared-pause-token"
    slow = {
        "loop_rate_limit_backoff_s": 0.3,
        "loop_rate_limit_max_backoff_s": 0.3,
        "loop_rate_limit_max_wait_s": 1.0,
    }
    first = make_http(token=token, **{**FAST_429, **slow})
    other = make_http(token=token, **FAST_429)
    seen: list[tuple[str, float]] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, time.monotonic()))
        if len(seen) == 1:
            return httpx.Response(429, json={"message": "Too Many Attempts."})
        return httpx.Response(200, json=[])

    mock.get("/a").mock(side_effect=record)
    mock.get("/b").mock(side_effect=record)
    limited = asyncio.create_task(first.request("GET", "/a", endpoint="a"))
    while not seen:
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.02)  # the 429 has arrived and paused the key
    await other.request("GET", "/b", endpoint="b")
    await limited
    (_, refused_at), (b_path, b_at), (a_path, a_at) = sorted(seen, key=lambda s: s[1])
    assert b_at - refused_at >= 0.28 and a_at - refused_at >= 0.28
    assert {a_path, b_path} == {"/a", "/b"}
    for client in (first, other):
        await client.aclose()


async def test_429_burst_is_one_pause_not_one_per_request(mock: respx.MockRouter) -> None:
    # Requests in flight together that all get 429 join one pause: the level counts
    # runs of 429s, not requests, so a burst does not push the pause to its ceiling.
    http = make_http(token="burst-429-token", **FAST_429)
    calls = 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return httpx.Response(429 if calls <= 8 else 200, json=[])

    mock.get("/x").mock(side_effect=answer)
    with capture_logs() as logs:
        await asyncio.gather(*(http.request("GET", "/x", endpoint="x.get") for _ in range(8)))
    pauses = [e["paused_s"] for e in logs if e["event"] == "loop.rate_limited"]
    assert len(pauses) == 8 and max(pauses) <= 0.01
    assert http.limiter().level == 0
    await http.aclose()


async def test_429_honours_retry_after(mock: respx.MockRouter) -> None:
    http = make_http(token="retry-after-token", **FAST_429)
    route = mock.get("/x").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0.25"}),
            httpx.Response(200, json=True),
        ]
    )
    started = time.monotonic()
    assert (await http.request("GET", "/x", endpoint="x.get")).body is True
    assert 0.25 <= time.monotonic() - started < 0.6  # Loop's wait, not the 10 ms backoff
    assert route.call_count == 2
    await http.aclose()


async def test_429_retry_after_beyond_the_cap_fails_at_once(mock: respx.MockRouter) -> None:
    http = make_http(token="retry-after-cap-token", http_max_retry_after_s=0.05)
    route = mock.get("/x").mock(return_value=httpx.Response(429, headers={"Retry-After": "3600"}))
    started = time.monotonic()
    with pytest.raises(LoopRateLimited) as info:
        await http.request("GET", "/x", endpoint="x.get")
    assert time.monotonic() - started < 0.5
    assert route.call_count == 1
    assert info.value.retry_after == 3600
    assert info.value.details["retryAfter"] == 3600
    assert http.limiter().paused_until > 0  # the key still pauses, for the capped time
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
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("no connection"),
        httpx.PoolTimeout("no free connection"),
        httpx.Response(429),
    ],
)
async def test_post_is_retried_when_surely_not_applied(
    http: UpstreamHTTP, mock: respx.MockRouter, first: Any
) -> None:
    route = mock.post("/w").mock(side_effect=[first, httpx.Response(200, json=True)])
    assert (await http.request("POST", "/w", endpoint="w", json_body={})).body is True
    assert route.call_count == 2


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_post_after_5xx_is_sent_once_and_outcome_unknown(
    http: UpstreamHTTP, mock: respx.MockRouter, status: int
) -> None:
    # A gateway's 503 may hide a note Loop went on adding: repeating could add it twice.
    route = mock.post("/w").mock(
        side_effect=[httpx.Response(status, json={"message": "Down"}), httpx.Response(200)]
    )
    with pytest.raises(LoopUnavailable) as info:
        await http.request("POST", "/w", endpoint="w", json_body={}, action=True)
    assert route.call_count == 1
    assert info.value.details["outcomeUnknown"] is True
    assert info.value.details["upstreamStatus"] == status
    assert info.value.message == "unable to execute action: 'Down'"


async def test_get_keeps_retrying_5xx_and_is_never_outcome_unknown(
    http: UpstreamHTTP, mock: respx.MockRouter
) -> None:
    route = mock.get("/r").mock(return_value=httpx.Response(503))
    with pytest.raises(LoopUnavailable) as info:
        await http.request("GET", "/r", endpoint="r")
    assert route.call_count == 3
    assert "outcomeUnknown" not in info.value.details


async def test_post_rate_limited_is_repeated_and_not_outcome_unknown(
    mock: respx.MockRouter,
) -> None:
    http = make_http(token="post-429-token", **FAST_429)
    route = mock.post("/w").mock(return_value=httpx.Response(429))
    with pytest.raises(LoopRateLimited) as info:
        await http.request("POST", "/w", endpoint="w", json_body={})
    assert route.call_count > 1  # Loop refuses a 429 before any work: safe to repeat
    assert "outcomeUnknown" not in info.value.details
    await http.aclose()


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


def busiest_window(stamps: list[float], period: float) -> int:
    """The most requests in any sliding window of `period` (each window starts at a request)."""
    stamps = sorted(stamps)
    return max(
        (bisect.bisect_left(stamps, t + period) - i for i, t in enumerate(stamps)), default=0
    )


def test_busiest_window() -> None:
    assert busiest_window([0.0, 0.5, 0.99, 1.0, 1.5], 1.0) == 3
    assert busiest_window([], 1.0) == 0


async def test_cold_start_never_exceeds_the_limit_in_any_window(
    mock: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 5 a second instead of 300 a minute. A token bucket starting full lets 5 through at
    # once and 5 more during the first second; the window lets exactly 5 per window.
    period, limit = 1.0, 5
    monkeypatch.setattr(limits, "RATE_PERIOD_S", period)
    http = make_http(token="cold-start-token", loop_rate_limit_per_minute=limit)
    stamps: list[float] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        stamps.append(time.monotonic())
        await asyncio.sleep(random.uniform(0, 0.05))  # answers come back out of order
        return httpx.Response(200, json=[])

    mock.get("/x").mock(side_effect=answer)
    started = time.monotonic()
    await asyncio.gather(*(http.request("GET", "/x", endpoint="x.get") for _ in range(16)))
    elapsed = time.monotonic() - started
    assert len(stamps) == 16
    assert busiest_window(stamps, period) == limit
    # The first five go at once; the rest follow one period after their predecessors.
    assert stamps[limit - 1] - stamps[0] < 0.2
    assert 3 * period <= elapsed < 3 * period + 1.0
    await http.aclose()


async def test_window_counts_from_the_answer_not_the_ask(
    mock: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A request that took 0.4 s to answer may have reached Loop at the end of those
    # 0.4 s: the next one waits a full period from the answer.
    monkeypatch.setattr(limits, "RATE_PERIOD_S", 0.5)
    http = make_http(token="answer-time-token", loop_rate_limit_per_minute=1)
    answered: list[float] = []
    sent: list[float] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        sent.append(time.monotonic())
        await asyncio.sleep(0.4 if len(sent) == 1 else 0)
        answered.append(time.monotonic())
        return httpx.Response(200, json=[])

    mock.get("/x").mock(side_effect=answer)
    await http.request("GET", "/x", endpoint="x.get")
    await http.request("GET", "/x", endpoint="x.get")
    assert sent[1] - answered[0] >= 0.5 - 0.01
    await http.aclose()


async def test_sandbox_sees_no_more_than_the_limit_in_any_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The same through the sandbox, whose own limiter stays off: it only records.
    period, limit = 1.0, 4
    monkeypatch.setattr(limits, "RATE_PERIOD_S", period)
    settings = Settings(sandbox_rate_limit_per_minute=0, loop_rate_limit_per_minute=limit)
    upstream = Upstream.from_settings(settings)
    assert upstream.sandbox is not None
    faults: FaultController = upstream.sandbox.state.faults
    started = time.monotonic()
    await asyncio.gather(
        *(
            upstream.returns.list_returns(f"c{n}@example.com", since=SINCE, limit=10)
            for n in range(10)
        )
    )
    elapsed = time.monotonic() - started
    stamps = [t for _, path, _, t in faults.request_log if path.startswith("/api/")]
    assert len(stamps) == 10
    assert busiest_window(stamps, period) == limit
    assert elapsed >= 2 * period
    await upstream.aclose()


async def test_rate_limit_is_shared_per_token() -> None:
    a, b, other = make_http(token="same-token-1234"), make_http("same-token-1234"), make_http()
    assert a.limiter() is b.limiter()
    assert a.limiter() is not other.limiter()
    assert a.limiter().limit == 300
    for client in (a, b, other):
        await client.aclose()


async def test_processes_without_redis_share_the_budget() -> None:
    http = make_http(token="divided-token", loop_rate_limit_processes=4)
    assert http.limiter().limit == 75  # 300 / 4
    await http.aclose()
    assert limits.process_share(300, 7) == 42
    with pytest.raises(ConfigError, match="LOOPDESK_REDIS_URL"):
        limits.process_share(300, 301)


def test_serve_workers_env_divides_the_budget() -> None:
    env = limits.serve_workers_env(make_settings(), 3)
    assert env == {"LOOPDESK_LOOP_RATE_LIMIT_PROCESSES": "3"}
    # Already set higher (several machines without Redis): kept.
    assert limits.serve_workers_env(make_settings(loop_rate_limit_processes=6), 3) == {
        "LOOPDESK_LOOP_RATE_LIMIT_PROCESSES": "6"
    }
    with pytest.raises(ConfigError):
        limits.serve_workers_env(make_settings(loop_rate_limit_per_minute=2), 3)


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


async def test_local_window_rules_on_a_fake_clock() -> None:
    now = [100.0]
    window = limits.LocalWindow(2, 10.0, clock=lambda: now[0])
    first, second = await window.acquire(), await window.acquire()
    assert window.wait_s() == pytest.approx(10.0)  # full: the head must leave first
    now[0] = 104.0
    window.release(first, status=200)  # answered at 104: counted until 114
    window.release(second, status=200)
    now[0] = 113.9
    assert window.wait_s() == pytest.approx(0.1)
    now[0] = 114.0
    assert window.wait_s() is None
    # 429 runs: a failed connection neither continues nor ends one; any answer ends it.
    # One burst of 429s is one step: both were sent before the first 429 was counted.
    assert window.escalate(granted=first.granted) == 1
    assert window.escalate(granted=second.granted) is None
    now[0] = 115.0
    third = await window.acquire()  # sent after that step: its 429 is the next one
    assert window.escalate(granted=third.granted) == 2
    # A failed connection neither continues nor ends a run of 429s; any answer ends it.
    window.release(third, status=None)
    assert window.level == 2
    window.release(third, status=503)
    assert window.level == 0
    # A pause is never shortened.
    assert window.pause(5.0) == pytest.approx(5.0)
    assert window.pause(1.0) == pytest.approx(5.0)
    assert window.wait_s() == pytest.approx(5.0)
