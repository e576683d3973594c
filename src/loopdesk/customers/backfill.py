"""Backfill: page through Loop's returns list into the store, resumably.

Loop's detailed list takes at most 120 days per request and one state at a time, so
the range is cut into windows and each window is read state by state, page by page.
After every page the returns and a checkpoint (window, state, cursor) are committed
together: an interrupted sync resumes at the page it was on, and upserting by id means
a page read twice never duplicates anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from loopdesk import store as db
from loopdesk.domain.normalize import normalize_return
from loopdesk.errors import InvalidInput, InvalidUpstreamData
from loopdesk.loop.returns import LoopReturnsClient

WINDOW = timedelta(days=120)
STATES = ("open", "closed", "cancelled", "expired", "review")
CHECKPOINT = "returns-backfill"


@dataclass
class BackfillResult:
    pages: int = 0
    returns: int = 0
    skipped: int = 0
    resumed: bool = False


def windows(since: datetime, until: datetime) -> Iterator[tuple[datetime, datetime]]:
    start = since
    while start < until:
        end = min(start + WINDOW - timedelta(seconds=1), until)
        yield start, end
        start = end + timedelta(seconds=1)


async def backfill(
    store: db.Store,
    client: LoopReturnsClient,
    *,
    since: datetime,
    until: datetime | None = None,
    page_size: int = 250,
    on_page: Callable[[datetime, datetime, int], None] | None = None,
) -> BackfillResult:
    """Sync returns updated in [since, until (default now)].

    An interrupted sync with the same `since` resumes where it stopped, over the range
    it had started. `on_page(window_end, until, n)` reports progress.
    """
    result = BackfillResult()
    async with store.session() as session:
        saved = await db.get_checkpoint(session, CHECKPOINT)
    resume = _resume_point(saved, since)
    if resume is not None:
        until = datetime.fromisoformat(resume["until"])
        result.resumed = True
    until = until or datetime.now(UTC)
    if since >= until:
        raise InvalidInput("--since must be before now")
    for start, end in windows(since, until):
        for state in STATES:
            cursor: str | None = None
            if resume is not None:
                if (start.isoformat(), state) != (resume["window"], resume["state"]):
                    continue  # done before the interruption
                cursor, resume = resume.get("cursor"), None
            while True:
                items, cursor = await client.returns_page(
                    start=start, end=end, state=state, cursor=cursor, page_size=page_size
                )
                pairs, skipped = _normalized(items)
                async with store.session() as session:
                    await db.upsert_returns(session, pairs)
                    await db.save_checkpoint(
                        session,
                        CHECKPOINT,
                        _checkpoint(since, until, start, state, cursor),
                    )
                result.pages += 1
                result.returns += len(pairs)
                result.skipped += skipped
                if on_page:
                    on_page(end, until, len(pairs))
                if cursor is None:
                    break
    async with store.session() as session:
        await db.save_checkpoint(session, CHECKPOINT, None)
    return result


def _normalized(items: list[Any]) -> tuple[list[tuple[dict[str, Any], Any]], int]:
    pairs = []
    skipped = 0
    for raw in items:
        try:
            pairs.append((raw, normalize_return(raw)))
        except InvalidUpstreamData:
            skipped += 1
    return pairs, skipped


def _checkpoint(
    since: datetime, until: datetime, window: datetime, state: str, cursor: str | None
) -> dict[str, Any]:
    if cursor is None:  # this state is done: resume at the next one
        index = STATES.index(state)
        if index + 1 < len(STATES):
            state, cursor = STATES[index + 1], None
        else:
            window, state = window + WINDOW, STATES[0]
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "window": window.isoformat(),
        "state": state,
        "cursor": cursor,
    }


def _resume_point(saved: Any, since: datetime) -> dict[str, Any] | None:
    """The checkpoint of an interrupted sync from the same `since`, else None."""
    if not isinstance(saved, dict) or saved.get("since") != since.isoformat():
        return None
    return saved
