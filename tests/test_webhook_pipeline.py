"""The webhook pipeline's parts: group commit (`webhook_record`), the applier
(`webhook_worker`, `webhook_batch`) and the receiver over them (`webhook_desk`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from loopdesk import store as db
from loopdesk.customers import webhook_record, webhook_worker
from loopdesk.customers.webhook_batch import Applied, Stored, apply_batch
from loopdesk.customers.webhook_desk import WebhookDesk
from loopdesk.customers.webhook_record import Delivery, Recorder, RecordFailed
from loopdesk.customers.webhook_worker import Applier
from loopdesk.customers.webhooks import WebhookDeferred
from loopdesk.domain.webhooks import parse_event, signature

SECRET = "pipeline-secret"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[db.Store]:
    opened = await db.Store.open(f"sqlite+aiosqlite:///{tmp_path}/pipeline.db")
    try:
        yield opened
    finally:
        await opened.close()


def _body(return_id: str, minute: int, state: str = "open", email: str = "") -> bytes:
    payload = {
        "topic": "return",
        "trigger": "return.updated",
        "shop_id": 1,
        "id": return_id,
        "state": state,
        "created_at": "2026-11-01T00:00:00+00:00",
        "updated_at": f"2026-11-02T00:{minute:02d}:00+00:00",
        "customer": email or f"c{return_id}@example.com",
        "order_name": f"#{return_id}",
        "return_total": f"{minute}.00",
        "line_items": [],
        "exchanges": [],
    }
    return json.dumps(payload).encode()


def _delivery(body: bytes) -> Delivery:
    event = parse_event(body)
    return Delivery(event.dedupe_key, event.topic, event.trigger, event.return_id, body)


async def _record(store: db.Store, bodies: Sequence[bytes]) -> list[Stored]:
    recorder = Recorder(store)
    try:
        recorded = await asyncio.gather(*(recorder.record(_delivery(b)) for b in bodies))
    finally:
        await recorder.aclose()
    return [Stored(r.event_id, parse_event(b)) for r, b in zip(recorded, bodies, strict=True)]


async def _statuses(store: db.Store) -> dict[str, int]:
    async with store.reader() as session:
        counts = await db.event_counts(session)
    return {status: n for status, n in counts.items() if n}


async def _stored(store: db.Store, return_id: str) -> db.StoredReturn | None:
    async with store.reader() as session:
        return await db.stored_return(session, return_id)


# --- group commit ---------------------------------------------------------------------


async def test_concurrent_deliveries_share_one_transaction(store: db.Store) -> None:
    recorder = Recorder(store)
    bodies = [_body(str(100 + n), 1) for n in range(20)]
    recorded = await asyncio.gather(*(recorder.record(_delivery(b)) for b in bodies))
    await recorder.aclose()
    assert recorder.batches == 1
    assert all(r.new and r.status == "received" for r in recorded)
    assert len({r.event_id for r in recorded}) == 20
    assert await _statuses(store) == {"received": 20}


async def test_a_redelivery_in_the_same_batch_is_a_duplicate_of_the_same_event(
    store: db.Store,
) -> None:
    recorder = Recorder(store)
    body = _body("200", 1)
    first, second = await asyncio.gather(
        recorder.record(_delivery(body)), recorder.record(_delivery(body))
    )
    await recorder.aclose()
    assert first.event_id == second.event_id
    assert sorted([first.new, second.new]) == [False, True]
    assert await _statuses(store) == {"received": 1}


async def test_a_failing_batch_answers_retry_later_to_all_and_stores_none(
    store: db.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = db.record_event
    calls = 0

    async def third_fails(*args: Any, **kwargs: Any) -> tuple[int, bool]:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OperationalError("INSERT INTO webhook_events", {}, Exception("disk I/O error"))
        return await real(*args, **kwargs)

    monkeypatch.setattr(webhook_record.db, "record_event", third_fails)
    recorder = Recorder(store)
    outcomes = await asyncio.gather(
        *(recorder.record(_delivery(_body(str(300 + n), 1))) for n in range(5)),
        return_exceptions=True,
    )
    await recorder.aclose()
    assert calls == 3 and all(isinstance(o, RecordFailed) for o in outcomes)
    assert await _statuses(store) == {}  # nothing of the batch, not even the first two


async def test_the_receiver_answers_a_failed_store_with_webhook_deferred(
    store: db.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(*args: Any, **kwargs: Any) -> tuple[int, bool]:
        raise OperationalError("INSERT INTO webhook_events", {}, Exception("connection lost"))

    monkeypatch.setattr(webhook_record.db, "record_event", down)
    desk = WebhookDesk(store, None)
    body = _body("400", 1)
    with pytest.raises(WebhookDeferred):
        await desk.receive(body, signature(body, SECRET), [SECRET])
    await desk.aclose()
    assert await _statuses(store) == {}


# --- the applier ------------------------------------------------------------------------


async def test_each_returns_events_apply_in_the_order_received(store: db.Store) -> None:
    # One batch: two changes of one return in order, two of another newest first.
    items = await _record(
        store,
        [_body("500", 1), _body("501", 9, "closed"), _body("500", 5, "closed"), _body("501", 3)],
    )
    applied = await apply_batch(store, items, None)
    results = [applied.results[item.event_id] for item in items]
    assert results == ["applied", "applied", "applied", "stale"]
    first, second = await _stored(store, "500"), await _stored(store, "501")
    assert first is not None and first.normalized["state"] == "closed"
    assert first.updated_at.isoformat() == "2026-11-02T00:05:00+00:00"
    # The older event received last did not overwrite the newer state.
    assert second is not None and second.normalized["state"] == "closed"
    assert second.updated_at.isoformat() == "2026-11-02T00:09:00+00:00"
    assert sorted(applied.changed) == ["500", "501"]


async def test_an_older_event_in_a_later_batch_changes_nothing(store: db.Store) -> None:
    [newer] = await _record(store, [_body("600", 30, "closed")])
    [older] = await _record(store, [_body("600", 10, "open")])
    assert (await apply_batch(store, [newer], None)).results == {newer.event_id: "applied"}
    later = await apply_batch(store, [older], None)
    assert later.results == {older.event_id: "stale"} and later.changed == []
    stored = await _stored(store, "600")
    assert stored is not None and stored.normalized["state"] == "closed"


async def test_a_batch_reroutes_each_return_once(store: db.Store) -> None:
    calls: list[list[str]] = []

    async def returns_changed(return_ids: Sequence[str]) -> None:
        calls.append(list(return_ids))

    desk = WebhookDesk(store, None, returns_changed=returns_changed)
    bodies = [_body("700", m) for m in (1, 2, 3)] + [_body("701", m) for m in (1, 2)]
    items = await _record(store, bodies)
    desk.start()
    desk.applier.submit(items)
    await desk.settled()
    await desk.aclose()
    assert calls == [["700", "701"]]
    assert await _statuses(store) == {"applied": 5}


async def test_rerouting_a_batch_decides_each_customer_once(
    tmp_path: Path, store: db.Store
) -> None:
    from loopdesk.customers.lookup import LookupOptions
    from loopdesk.routing.reroute import Rerouter
    from loopdesk.routing.service import RoutingConfig
    from loopdesk.settings import Settings
    from loopdesk.store import outbox as ob

    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/pipeline.db")
    rerouter = Rerouter(RoutingConfig.from_settings(settings), store, LookupOptions())
    decided: list[list[str]] = []
    real = rerouter._facts_of

    async def counting(session: Any, groups: dict[str, list[str]], now: Any) -> Any:
        decided.append(sorted(a for addresses in groups.values() for a in addresses))
        return await real(session, groups, now)

    rerouter._facts_of = counting  # type: ignore[method-assign]
    # Two returns of one customer, one of another: two customers, decided together.
    items = await _record(
        store,
        [
            _body("800", 1, email="same@example.com"),
            _body("801", 1, email="same@example.com"),
            _body("802", 1, email="other@example.com"),
        ],
    )
    applied = await apply_batch(store, items, None)
    await rerouter.for_returns(applied.changed, cause="webhook")
    # Facts read once for both customers to find the changes, once to record them.
    assert decided == [["other@example.com", "same@example.com"]] * 2
    async with store.reader() as session:
        page = await ob.outcomes_page(session, after="", limit=10)
    assert sorted(email for row in page for email in row.emails) == [
        "other@example.com",
        "same@example.com",
    ]


async def test_start_up_sweep_applies_what_a_crash_left(store: db.Store) -> None:
    await _record(store, [_body(str(900 + n), 1) for n in range(5)])  # stored, never applied
    seen: list[Applied] = []

    async def on_batch(applied: Applied) -> None:
        seen.append(applied)

    applier = Applier(store, None, on_batch=on_batch, sweep_interval_s=0)
    applier.start()
    try:
        async with asyncio.timeout(10):
            while await _statuses(store) != {"applied": 5}:
                await asyncio.sleep(0.02)  # polling the outcome the sweep writes
    finally:
        await applier.aclose()
    assert sum(len(a.results) for a in seen) == 5


async def test_shutdown_drains_what_is_waiting(store: db.Store) -> None:
    items = await _record(store, [_body(str(1000 + n), 1) for n in range(300)])
    applier = Applier(store, None, sweep_interval_s=0, batch=50)
    applier.start()
    applier.submit(items)
    assert applier.pending == 300
    await applier.aclose()  # before the queue was worked through
    assert applier.pending == 0
    assert await _statuses(store) == {"applied": 300}


async def test_a_batch_that_failed_is_tried_again_soon_not_left_to_the_sweep(
    store: db.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deadlock or a store briefly away fails a batch: its events stay `received` and
    are applied again within seconds, not at the next minute's sweep."""
    items = await _record(store, [_body(str(1400 + n), 1) for n in range(6)])
    failures = {"left": 2}
    real = webhook_worker.apply_batch

    async def flaky(store_: db.Store, batch: Sequence[Stored], reads: Any) -> Applied:
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("INSERT", {}, Exception("deadlock detected"))
        return await real(store_, batch, reads)

    monkeypatch.setattr(webhook_worker, "apply_batch", flaky)
    applier = Applier(store, None, sweep_interval_s=3600)
    applier.start()
    try:
        await asyncio.sleep(0.05)  # the start-up sweep found nothing to do
        applier.submit(items)
        async with asyncio.timeout(5):
            await applier.settled()
    finally:
        await applier.aclose()
    assert failures["left"] == 0
    assert await _statuses(store) == {"applied": 6}


async def test_events_deferred_every_time_are_left_to_the_sweep(
    store: db.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhook_worker, "RETRY_BASE_S", 0.01)
    items = await _record(store, [_body("1500", 1)])
    tries = []

    async def down(store_: db.Store, batch: Sequence[Stored], reads: Any) -> Applied:
        tries.append(len(batch))
        return Applied(results={item.event_id: "received" for item in batch})

    monkeypatch.setattr(webhook_worker, "apply_batch", down)
    applier = Applier(store, None, sweep_interval_s=3600)
    applier.start()
    try:
        applier.submit(items)
        async with asyncio.timeout(5):
            await applier.settled()
    finally:
        await applier.aclose()
    assert len(tries) == 1 + webhook_worker.RETRIES
    assert await _statuses(store) == {"received": 1}  # the sweep's, next


async def test_shutdown_during_the_start_up_sweep_lets_it_finish(store: db.Store) -> None:
    """A stop right after a restart: the events a crash left are all applied, not only
    the pages the sweep had reached."""
    await _record(store, [_body(str(1600 + n), 1) for n in range(400)])  # never applied
    applier = Applier(store, None, sweep_interval_s=0, batch=25)
    applier.start()
    await asyncio.sleep(0)  # the sweep has begun
    await applier.aclose()
    assert await _statuses(store) == {"applied": 400}


async def test_deliveries_wait_when_the_applier_is_far_behind(store: db.Store) -> None:
    desk = WebhookDesk(store, None, max_pending=2, sweep_interval_s=0)
    bodies = [_body(str(1100 + n), 1) for n in range(3)]
    answers = [await desk.receive(b, signature(b, SECRET), [SECRET]) for b in bodies[:2]]
    assert [a.result for a in answers] == ["received", "received"]
    waiting = asyncio.create_task(desk.receive(bodies[2], signature(bodies[2], SECRET), [SECRET]))
    with pytest.raises(TimeoutError):  # two wait to be applied: the third waits for room
        await asyncio.wait_for(asyncio.shield(waiting), 0.2)
    desk.start()
    assert (await asyncio.wait_for(waiting, 10)).result == "received"
    await desk.settled()
    await desk.aclose()
    assert await _statuses(store) == {"applied": 3}
