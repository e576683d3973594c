"""The Loop clients against the sandbox's 429s and 5xx: pauses, recovery, writes once."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import AsyncIterator

import pytest

from loopdesk.errors import LoopUnavailable
from loopdesk.runtime import Upstream
from loopdesk.sandbox.faults import FaultController
from loopdesk.settings import Settings

RETURNS = "/api/v2/returns"
SINCE = dt.date(2020, 1, 1)


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    settings = Settings(
        sandbox_rate_limit_per_minute=0,
        loop_rate_limit_backoff_s=0.05,
        loop_rate_limit_max_backoff_s=0.2,
        loop_rate_limit_max_wait_s=2.0,
    )
    upstream = Upstream.from_settings(settings)
    yield upstream
    await upstream.aclose()


def _faults(upstream: Upstream) -> FaultController:
    assert upstream.sandbox is not None
    faults: FaultController = upstream.sandbox.state.faults
    return faults


def _a_return_id(upstream: Upstream) -> str:
    assert upstream.sandbox is not None
    return str(next(iter(upstream.sandbox.state.world.returns)))


def _stamps(faults: FaultController, path: str) -> list[float]:
    return [t for _, p, _, t in faults.request_log if p.startswith(path)]


async def test_429s_without_retry_after_are_waited_out(upstream: Upstream) -> None:
    # The sandbox's 429 carries no Retry-After, as Loop's: the client backs off
    # 50, 100, 200 ms and the fourth attempt is served.
    faults = _faults(upstream)
    faults.add(RETURNS, status=429, times=3)
    returns = await upstream.returns.list_returns("primary@email.com", since=SINCE, limit=10)
    assert returns["status"] == "success"
    stamps = _stamps(faults, RETURNS)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(stamps) == 4
    assert [round(g, 2) >= w for g, w in zip(gaps, (0.05, 0.1, 0.2), strict=True)] == [True] * 3


async def test_a_note_answered_503_is_added_at_most_once(upstream: Upstream) -> None:
    faults, return_id = _faults(upstream), _a_return_id(upstream)
    faults.add("/note", status=503, times=1, method="POST")
    with pytest.raises(LoopUnavailable) as info:
        await upstream.returns.add_note(return_id, "Customer called")
    assert info.value.details["outcomeUnknown"] is True
    assert faults.request_counts() == {f"/api/v1/warehouse/return/{return_id}/note": 1}


async def test_a_note_refused_by_rate_is_added_once_it_may(upstream: Upstream) -> None:
    faults, return_id = _faults(upstream), _a_return_id(upstream)
    faults.add("/note", status=429, times=2, method="POST")
    await upstream.returns.add_note(return_id, "Customer called")
    assert faults.request_counts() == {f"/api/v1/warehouse/return/{return_id}/note": 3}
