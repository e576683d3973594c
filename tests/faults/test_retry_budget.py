"""One call to Loop, retries included, never outlasts `http_retry_timeout_s`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest

from loopdesk.errors import LoopRateLimited, LoopUnavailable
from loopdesk.loop.returns import LoopReturnsClient
from loopdesk.sandbox.app import create_sandbox_app
from loopdesk.sandbox.faults import FaultController
from loopdesk.sandbox.seed import generate_world
from loopdesk.settings import Settings

pytestmark = pytest.mark.timing

BUDGET_S = 1.0
# Jittered backoff and many attempts: without a hard budget these add up to seconds.
SETTINGS = Settings(
    http_connect_timeout_s=0.1,
    http_read_timeout_s=0.2,
    http_retry_attempts=10,
    http_retry_timeout_s=BUDGET_S,
    http_max_retry_after_s=10,
    loop_rate_limit_max_wait_s=0.5,  # what Loop's 429s may add to a call in all
    loop_rate_limit_per_minute=100_000,
    sandbox_rate_limit_per_minute=0,
)
SLACK_S = 0.3


@pytest.fixture
async def loop() -> AsyncIterator[tuple[LoopReturnsClient, FaultController]]:
    app = create_sandbox_app(SETTINGS, world=generate_world(customers=2))
    client = LoopReturnsClient(
        base_url="http://sandbox",
        token="budget-test-token",
        settings=SETTINGS,
        transport=httpx.ASGITransport(app=app),
    )
    yield client, app.state.faults
    await client.aclose()


async def _timed_failure(client: LoopReturnsClient) -> tuple[Exception, float]:
    started = time.monotonic()
    with pytest.raises((LoopUnavailable, LoopRateLimited)) as caught:
        await client.list_notes("25044000")
    return caught.value, time.monotonic() - started


async def test_hang_ends_within_the_budget(
    loop: tuple[LoopReturnsClient, FaultController],
) -> None:
    client, faults = loop
    faults.add("/notes", hang=True)
    error, elapsed = await _timed_failure(client)
    assert isinstance(error, LoopUnavailable) and "in time" in error.message
    assert elapsed <= BUDGET_S + SLACK_S


async def test_repeated_5xx_ends_within_the_budget(
    loop: tuple[LoopReturnsClient, FaultController],
) -> None:
    client, faults = loop
    faults.add("/notes", status=503, latency_ms=150)
    error, elapsed = await _timed_failure(client)
    # The last answer Loop gave is what the caller hears, not a timeout.
    assert isinstance(error, LoopUnavailable) and error.status == 503
    assert elapsed <= BUDGET_S + SLACK_S


async def test_retry_after_past_the_budget_is_not_waited_for(
    loop: tuple[LoopReturnsClient, FaultController],
) -> None:
    client, faults = loop
    faults.add("/notes", status=429, retry_after=5)
    error, elapsed = await _timed_failure(client)
    assert isinstance(error, LoopRateLimited) and error.retry_after == 5
    assert elapsed < 0.5
    assert faults.request_counts() == {"/api/v1/warehouse/return/25044000/notes": 1}
