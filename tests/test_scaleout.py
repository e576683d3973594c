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
from bench.server import free_port

from loopdesk.loop.shared_limits import SharedRateLimit
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
    first, second = SharedRateLimit(REDIS_URL, 5), SharedRateLimit(REDIS_URL, 5)
    try:
        for limiter in (first, second, first, second, first):
            await asyncio.wait_for(limiter.acquire(key), 1)
        with pytest.raises(TimeoutError):  # the sixth in the minute must wait
            await asyncio.wait_for(second.acquire(key), 0.5)
    finally:
        await first.clear(key)


async def test_unreachable_redis_falls_back_to_local_limits() -> None:
    limiter = SharedRateLimit("redis://127.0.0.1:1/0", 1)
    for _ in range(3):
        await asyncio.wait_for(limiter.acquire("x"), 5)


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


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
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
        **os.environ,
        "LOOPDESK_SANDBOX_RATE_LIMIT_PER_MINUTE": "0",
        "LOOPDESK_SANDBOX_LATENCY_MS": "20",
        "LOOPDESK_LOOP_API_TOKEN": token,
        "LOOPDESK_LOOP_BASE_URL": sandbox_url,
        "LOOPDESK_ORDER_TRACKING_TOKEN": token + "-tracking",
        "LOOPDESK_ORDER_TRACKING_BASE_URL": sandbox_url,
        "LOOPDESK_DATABASE_URL": database_url,
        "LOOPDESK_REDIS_URL": REDIS_URL,
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
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        asyncio.run(pg.drop_all())


@pytest.mark.slow
async def test_two_workers_stay_within_the_limit_together(
    two_workers: tuple[str, str, str],
) -> None:
    service_url, sandbox_url, key = two_workers
    async with httpx.AsyncClient(timeout=httpx.Timeout(4.0)) as client:
        world = (await client.get(f"{sandbox_url}/_sandbox/health")).json()
        assert world["returns"] > 0
        emails = [f"customer{n:03d}@example.com" for n in range(40)]

        async def lookup(email: str) -> None:
            # A timeout means held back by the shared limit: exactly what is measured.
            with contextlib.suppress(httpx.TimeoutException):
                await client.get(
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
    # send LIMIT in the first minute, and this run lasted well under a minute.
    assert elapsed < 60
    assert LIMIT * 0.5 <= loop_requests <= LIMIT


def _flatten(counts: object) -> dict[str, int]:
    if isinstance(counts, dict) and "requests" in counts and isinstance(counts["requests"], dict):
        counts = counts["requests"]
    assert isinstance(counts, dict)
    return {str(k): int(v) for k, v in counts.items() if isinstance(v, int)}
