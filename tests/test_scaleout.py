"""Several workers on one PostgreSQL and one Redis stay within Loop's rate limit together.

Needs the local PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379); where either is
absent the tests are skipped, saying which.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import respx
from bench.server import free_port
from structlog.testing import capture_logs

from loopdesk.loop import limits
from loopdesk.loop.limits import KeyRateLimit
from loopdesk.loop.shared_limits import SharedWindow
from loopdesk.settings import Settings
from tests.reports import Report
from tests.test_loop_http import BASE, busiest_window, make_http
from tests.test_store import PG_SKIP, PgServer

REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_SKIP = "Redis not reachable at 127.0.0.1:6379: cross-worker rate-limit tests skipped"
LIMIT = 20


def _require_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip(REDIS_SKIP)


async def test_shared_limit_spans_limiter_instances() -> None:
    _require_redis()
    key = f"test-{secrets.token_hex(6)}"
    first, second = SharedWindow(REDIS_URL, 5), SharedWindow(REDIS_URL, 5)
    try:
        for limiter in (first, second, first, second, first):
            await asyncio.wait_for(limiter.acquire(key, 60.0), 1)
        with pytest.raises(TimeoutError):  # the sixth in the minute must wait
            await asyncio.wait_for(second.acquire(key, 60.0), 0.5)
    finally:
        await first.clear(key)
        await first.aclose()
        await second.aclose()


async def test_a_pause_on_redis_holds_every_worker() -> None:
    _require_redis()
    key = f"test-{secrets.token_hex(6)}"
    one, other = SharedWindow(REDIS_URL, 100), SharedWindow(REDIS_URL, 100)
    try:
        member, granted = await one.acquire(key, 60.0)
        _, granted_with = await other.acquire(key, 60.0)  # in flight with it
        assert await one.escalate(key, granted) == 1
        assert await one.pause(key, 0.4) == pytest.approx(0.4, abs=0.01)
        # Sent before that escalation: the same burst of 429s, no longer pause.
        assert await other.escalate(key, granted_with) is None
        assert await other.pause(key, 0.1) > 0.3  # a shorter pause never cuts it short
        started = time.monotonic()
        member, granted = await other.acquire(key, 60.0)
        assert time.monotonic() - started >= 0.35
        assert await other.escalate(key, granted) == 2  # sent after the pause: next step
        await other.release(key, member, 60.0, status=200)  # a success resets
        assert await one.escalate(key, granted) == 1
    finally:
        await one.clear(key)
        await one.aclose()
        await other.aclose()


async def test_workers_on_redis_never_exceed_the_limit_in_any_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two clients as two workers would hold them (each its own limiter, one Redis):
    # together never more than the limit in any sliding window, from a cold start.
    _require_redis()
    period, limit = 1.0, 5
    monkeypatch.setattr(limits, "RATE_PERIOD_S", period)
    token = f"redis-window-{secrets.token_hex(6)}"
    settings = {"redis_url": REDIS_URL, "loop_rate_limit_per_minute": limit}
    workers = [make_http(token=token, **settings) for _ in range(2)]
    stamps: list[float] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        stamps.append(time.monotonic())
        await asyncio.sleep(0.02)
        return httpx.Response(200, json=[])

    try:
        with respx.mock(base_url=BASE) as mock:
            mock.get("/x").mock(side_effect=answer)
            await asyncio.gather(
                *(workers[n % 2].request("GET", "/x", endpoint="x") for n in range(14))
            )
        assert len(stamps) == 14
        assert busiest_window(stamps, period) == limit
        assert stamps[-1] - stamps[0] >= 2 * period
    finally:
        await SharedWindow(REDIS_URL, limit).clear(limits.token_fingerprint(token))
        for worker in workers:
            await worker.aclose()


async def test_a_429_on_one_worker_pauses_the_other_through_redis() -> None:
    _require_redis()
    token = f"redis-pause-{secrets.token_hex(6)}"
    settings = {
        "redis_url": REDIS_URL,
        "loop_rate_limit_backoff_s": 0.4,
        "loop_rate_limit_max_wait_s": 2.0,
    }
    refused, other = make_http(token=token, **settings), make_http(token=token, **settings)
    seen: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(time.monotonic())
        return httpx.Response(429 if len(seen) == 1 else 200, json=[])

    try:
        with respx.mock(base_url=BASE) as mock:
            mock.get("/x").mock(side_effect=answer)
            first = asyncio.create_task(refused.request("GET", "/x", endpoint="x"))
            while not seen:
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.05)
            # The other worker's own local window knows nothing of the 429; Redis does.
            other.limiter().paused_until = 0.0
            await other.request("GET", "/x", endpoint="x")
            await first
        assert seen[1] - seen[0] >= 0.38 and seen[2] - seen[0] >= 0.38
    finally:
        await SharedWindow(REDIS_URL, 1).clear(limits.token_fingerprint(token))
        for client in (refused, other):
            await client.aclose()


async def test_unreachable_redis_falls_back_to_this_process_share() -> None:
    settings = Settings(
        loop_api_token="t",
        redis_url="redis://127.0.0.1:1/0",
        loop_rate_limit_per_minute=10,
        loop_rate_limit_processes=2,
    )
    rate = KeyRateLimit("fallback", settings)
    started = time.monotonic()
    with capture_logs() as logs:
        tickets = [await asyncio.wait_for(rate.acquire(), 5) for _ in range(5)]
    assert all(t.local is not None and t.shared is None for t in tickets)
    assert rate.local().limit == 5  # half of 10: the other worker may be on its own too
    assert time.monotonic() - started < 5
    assert [e["event"] for e in logs].count("loop.shared_limit_unavailable") == 1
    with pytest.raises(TimeoutError):  # this process's share is spent
        await asyncio.wait_for(rate.acquire(), 0.3)
    await rate.aclose()


def _wait_up(url: str, proc: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{url} exited: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@pytest.fixture(params=["redis", "no-redis"])
def two_workers(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, str, str]]:
    """`serve --workers 2` sharing Loop's budget on Redis, or dividing it without."""
    with_redis = request.param == "redis"
    if with_redis:
        _require_redis()
    pg = PgServer()
    try:
        database_url = asyncio.run(pg.create_database())
    except Exception:
        pytest.skip(PG_SKIP)
    token = f"scaleout-{secrets.token_hex(6)}"
    sandbox_port, service_port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    env = {
        **{k: v for k, v in os.environ.items() if k != "LOOPDESK_REDIS_URL"},
        "LOOPDESK_SANDBOX_RATE_LIMIT_PER_MINUTE": "0",
        "LOOPDESK_SANDBOX_LATENCY_MS": "20",
        "LOOPDESK_LOOP_API_TOKEN": token,
        "LOOPDESK_LOOP_BASE_URL": sandbox_url,
        "LOOPDESK_ORDER_TRACKING_TOKEN": token + "-tracking",
        "LOOPDESK_ORDER_TRACKING_BASE_URL": sandbox_url,
        "LOOPDESK_DATABASE_URL": database_url,
        **({"LOOPDESK_REDIS_URL": REDIS_URL} if with_redis else {}),
        "LOOPDESK_LOOP_RATE_LIMIT_PER_MINUTE": str(LIMIT),
        "LOOPDESK_API_KEY": "scaleout-key-0123456789",
        "LOOPDESK_LOOKUP_TTL_S": "0",
        "LOOPDESK_LOG_LEVEL": "ERROR",
    }
    cli = [sys.executable, "-m", "loopdesk"]
    sandbox = subprocess.Popen(
        [*cli, "sandbox", "--port", str(sandbox_port)],
        env=env,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    service = subprocess.Popen(
        [*cli, "serve", "--workers", "2", "--port", str(service_port)],
        env=env,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    try:
        _wait_up(f"{sandbox_url}/_sandbox/health", sandbox)
        _wait_up(f"http://127.0.0.1:{service_port}/healthz", service)
        yield f"http://127.0.0.1:{service_port}", sandbox_url, "scaleout-key-0123456789"
    finally:
        for proc in (service, sandbox):
            proc.terminate()
        for proc in (service, sandbox):
            try:
                # A request held back by the shared limit keeps a worker in its graceful
                # shutdown: nothing is left to measure by then.
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        asyncio.run(pg.drop_all())


@pytest.mark.slow
@pytest.mark.timing  # every request must fall in one window: the run must last under a minute
async def test_two_workers_stay_within_the_limit_together(
    two_workers: tuple[str, str, str], report: Report
) -> None:
    service_url, sandbox_url, key = two_workers
    async with httpx.AsyncClient(timeout=httpx.Timeout(4.0)) as client:
        world = (await client.get(f"{sandbox_url}/_sandbox/health")).json()
        assert world["returns"] > 0
        emails = [f"customer{n:03d}@example.com" for n in range(40)]

        async def lookup(email: str) -> None:
            # A timeout means held back by the shared limit: exactly what is measured.
            # A connection of its own each, so both workers get some of them.
            async with httpx.AsyncClient(timeout=httpx.Timeout(4.0)) as own:
                with contextlib.suppress(httpx.TimeoutException):
                    await own.get(
                        f"{service_url}/v1/customers/lookup",
                        params={"email": email},
                        headers={"Authorization": f"Bearer {key}"},
                    )

        started = time.monotonic()
        await asyncio.gather(*(lookup(e) for e in emails))
        elapsed = time.monotonic() - started
        counts = (await client.get(f"{sandbox_url}/_sandbox/requests")).json()
    loop_requests = sum(n for path, n in _flatten(counts).items() if path.startswith("/api/"))
    # 40 lookups want at least 40 Loop Returns requests; the two workers together may
    # send LIMIT in the first minute, and this run lasted well under a minute (so every
    # request fell in one window). Without Redis each worker has half: the total is
    # still LIMIT at most, and at least one worker's half.
    report(
        f"[scale-out] two workers: {loop_requests} Loop requests in {elapsed:.1f} s"
        f" (limit {LIMIT}/min)"
    )
    assert elapsed < 60
    assert LIMIT * 0.5 <= loop_requests <= LIMIT


def _flatten(counts: object) -> dict[str, int]:
    if isinstance(counts, dict) and "requests" in counts and isinstance(counts["requests"], dict):
        counts = counts["requests"]
    assert isinstance(counts, dict)
    return {str(k): int(v) for k, v in counts.items() if isinstance(v, int)}
