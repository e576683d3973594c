"""Writes exactly once: `Idempotency-Key` on actions, and every call to Loop audited.

Through the HTTP API on the sandbox upstream, on SQLite and PostgreSQL (a database
per test; skipped, saying so, when no server answers at 127.0.0.1:5432).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import update

from loopdesk import store as db
from loopdesk.actions.idempotency import KeyPolicy, fingerprint
from loopdesk.actions.verify import VerifyPolicy
from loopdesk.loop.returns import LoopReturnsClient
from loopdesk.store.schema import idempotency_keys
from loopdesk.store.types import utcnow
from tests.test_service import Service, _service
from tests.test_store import PG_SKIP, PgServer

pytestmark = pytest.mark.usefixtures("instant_retries")

CONCURRENT = 50


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    server = PgServer()
    try:
        asyncio.run(server.create_database())
    except (OSError, asyncpg.PostgresError, TimeoutError):
        server.reachable = False
    yield server
    if server.created:
        asyncio.run(server.drop_all())


@pytest.fixture(params=["sqlite", "postgresql"])
async def svc(
    request: pytest.FixtureRequest, tmp_path: Path, pg: PgServer
) -> AsyncIterator[Service]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/service.db"
    else:
        if not pg.reachable:
            pytest.skip(PG_SKIP)
        url = await pg.create_database()
    # A run of 429s gives up after a second here (Loop's default pause would be a minute).
    overrides = {"loop_rate_limit_max_wait_s": 1.0, "loop_rate_limit_backoff_s": 0.05}
    async for service in _service(tmp_path, database_url=url, **overrides):
        yield service


def open_return(svc: Service) -> str:
    world = svc.sandbox.state.world
    return next(i for i, r in world.returns.items() if r["state"] == "open")


def notes_in_loop(svc: Service, return_id: str, content: str) -> int:
    return sum(
        1 for n in svc.sandbox.state.world.notes.get(return_id, []) if n["content"] == content
    )


def note_posts(svc: Service) -> int:
    """Note writes the sandbox received (the re-read of the notes is a GET)."""
    log = svc.sandbox.state.faults.request_log
    return sum(1 for method, path, *_ in log if method == "POST" and path.endswith("/note"))


async def add_note(svc: Service, return_id: str, content: str, key: str | None) -> httpx.Response:
    headers = {**svc.auth, **({"Idempotency-Key": key} if key else {})}
    return await svc.client.post(
        f"/v1/returns/{return_id}/notes", json={"content": content}, headers=headers
    )


async def audit_rows(svc: Service, action: str = "note.add") -> list[db.AuditRow]:
    async with svc.store.session() as session:
        return await db.list_audit(session, action=action)


async def key_row(svc: Service, key: str) -> db.IdempotencyRow | None:
    async with svc.store.session() as session:
        return await db.get_idempotency_key(session, "agent-console", key)


async def age_key(svc: Service, key: str, by: timedelta) -> None:
    """As if the key had been claimed `by` ago."""
    async with svc.store.session() as session:
        await session.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.idempotency_key == key)
            .values(started_at=utcnow() - by)
        )


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


# --- one key, many requests --------------------------------------------------------------


async def test_concurrent_requests_with_one_key_write_once(svc: Service) -> None:
    return_id = open_return(svc)
    content = "Customer called about the refund"
    responses = await asyncio.gather(
        *(add_note(svc, return_id, content, "note-1") for _ in range(CONCURRENT))
    )
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 409}, statuses
    assert notes_in_loop(svc, return_id, content) == 1
    assert note_posts(svc) == 1
    rows = await audit_rows(svc)
    assert len(rows) == 1 and rows[0].ok and rows[0].idempotency_key == "note-1"

    answered = [r for r in responses if r.status_code == 200]
    first = {"returnId": return_id, "content": content, "added": True}
    assert answered and all(r.json() == first for r in answered)
    assert sum(1 for r in answered if r.headers.get("Idempotent-Replayed") != "true") == 1
    for conflict in (r for r in responses if r.status_code == 409):
        assert error_code(conflict) == "idempotency_conflict"
        assert conflict.json()["error"]["details"]["idempotencyKey"] == "note-1"

    # Afterwards every request with the key gets the first answer; Loop is not called.
    again = await add_note(svc, return_id, content, "note-1")
    assert again.status_code == 200 and again.json() == first
    assert again.headers["Idempotent-Replayed"] == "true"
    assert note_posts(svc) == 1 and len(await audit_rows(svc)) == 1
    kept = await key_row(svc, "note-1")
    assert kept is not None and kept.status == "done"
    assert kept.audit_id == rows[0].id and kept.response == rows[0].result


async def test_a_request_waits_for_the_first_one_with_its_key(svc: Service) -> None:
    return_id = open_return(svc)
    # A second request started while the first runs waits and gets its answer.
    svc.sandbox.state.faults.add("/note", latency_ms=400, method="POST", times=1)
    slow = asyncio.ensure_future(add_note(svc, return_id, "slow too", "wait-2"))
    await asyncio.sleep(0.15)
    waited = await add_note(svc, return_id, "slow too", "wait-2")
    assert (await slow).status_code == waited.status_code == 200
    assert waited.headers["Idempotent-Replayed"] == "true"
    assert notes_in_loop(svc, return_id, "slow too") == 1


async def test_a_request_gets_409_once_the_wait_is_over(svc: Service) -> None:
    svc.app.state.actions.keys.policy = KeyPolicy(wait_s=0.1)
    return_id = open_return(svc)
    svc.sandbox.state.faults.add("/note", latency_ms=600, method="POST", times=1)
    slow = asyncio.ensure_future(add_note(svc, return_id, "slow", "busy-1"))
    await asyncio.sleep(0.2)
    busy = await add_note(svc, return_id, "slow", "busy-1")
    assert busy.status_code == 409 and error_code(busy) == "idempotency_conflict"
    assert busy.json()["error"]["details"]["retryable"] is True
    assert (await slow).status_code == 200
    assert notes_in_loop(svc, return_id, "slow") == 1


# --- a key reused for another request ----------------------------------------------------


async def test_a_key_reused_for_another_request_is_422(svc: Service) -> None:
    world = svc.sandbox.state.world
    first_id, other_id = [i for i, r in world.returns.items() if r["state"] == "open"][:2]
    assert (await add_note(svc, first_id, "first", "k-1")).status_code == 200
    other_body = await add_note(svc, first_id, "second", "k-1")
    other_return = await add_note(svc, other_id, "first", "k-1")
    headers = {**svc.auth, "Idempotency-Key": "k-1"}
    other_action = await svc.client.post(f"/v1/returns/{first_id}/flag", headers=headers)
    for refused in (other_body, other_return, other_action):
        assert refused.status_code == 422, refused.text
        assert error_code(refused) == "idempotency_mismatch"
        assert "added" not in refused.json()  # not the first answer
    assert notes_in_loop(svc, first_id, "second") == 0
    assert notes_in_loop(svc, other_id, "first") == 0
    assert note_posts(svc) == 1 and len(await audit_rows(svc)) == 1
    assert world.returns[first_id]["state"] == "open"


async def test_keys_are_scoped_per_api_key(svc: Service) -> None:
    return_id = open_return(svc)
    async with svc.store.session() as session:
        other_key = await db.create_api_key(session, "other-console")
    assert (await add_note(svc, return_id, "mine", "shared-1")).status_code == 200
    theirs = await svc.client.post(
        f"/v1/returns/{return_id}/notes",
        json={"content": "theirs"},
        headers={"Authorization": f"Bearer {other_key}", "Idempotency-Key": "shared-1"},
    )
    assert theirs.status_code == 200 and theirs.json()["content"] == "theirs"
    assert note_posts(svc) == 2


async def test_an_expired_key_is_a_new_request(svc: Service) -> None:
    return_id = open_return(svc)
    assert (await add_note(svc, return_id, "day one", "daily")).status_code == 200
    await age_key(svc, "daily", timedelta(hours=25))
    later = await add_note(svc, return_id, "day two", "daily")
    assert later.status_code == 200 and later.json()["content"] == "day two"
    assert "Idempotent-Replayed" not in later.headers
    assert note_posts(svc) == 2


def test_the_fingerprint_is_canonical() -> None:
    assert fingerprint("note.add", {"a": 1, "b": "é"}) == fingerprint(
        "note.add", {"b": "é", "a": 1}
    )
    assert fingerprint("note.add", {"a": 1}) != fingerprint("note.flag", {"a": 1})
    assert fingerprint("note.add", {"a": 1}) != fingerprint("note.add", {"a": "1"})


# --- failures Loop did not apply are not kept --------------------------------------------


async def test_a_503_before_any_write_is_not_kept(svc: Service) -> None:
    """A 503 to a write may or may not have landed; the notes read after it show it did
    not (the sandbox fails before writing), so the key is let go and a retry runs.
    The other verdicts are in `test_verify_writes`."""
    svc.app.state.actions.verify = VerifyPolicy(settle_s=0)
    return_id = open_return(svc)
    svc.sandbox.state.faults.add("/note", status=503, method="POST")
    failed = await add_note(svc, return_id, "after the outage", "retry-503")
    assert failed.status_code == 503 and error_code(failed) == "loop_unavailable"
    details = failed.json()["error"]["details"]
    assert "outcomeUnknown" not in details and details["applied"] is False
    assert notes_in_loop(svc, return_id, "after the outage") == 0
    assert await key_row(svc, "retry-503") is None
    svc.sandbox.state.faults.clear()

    retried = await add_note(svc, return_id, "after the outage", "retry-503")
    rows = await audit_rows(svc)
    assert retried.status_code == 200 and "Idempotent-Replayed" not in retried.headers
    assert notes_in_loop(svc, return_id, "after the outage") == 1
    assert [r.ok for r in rows] == [True, False]
    assert {r.idempotency_key for r in rows} == {"retry-503"}


async def test_a_429_is_not_kept(svc: Service) -> None:
    return_id = open_return(svc)
    svc.sandbox.state.faults.add("/note", status=429, method="POST")  # no Retry-After, as Loop
    limited = await add_note(svc, return_id, "later", "retry-429")
    assert limited.status_code == 503 and error_code(limited) == "loop_rate_limited"
    assert await key_row(svc, "retry-429") is None
    svc.sandbox.state.faults.clear()
    retried = await add_note(svc, return_id, "later", "retry-429")
    assert retried.status_code == 200 and notes_in_loop(svc, return_id, "later") == 1
    assert [r.ok for r in await audit_rows(svc)] == [True, False]


async def test_a_refusal_is_not_kept(svc: Service) -> None:
    order = svc.sandbox.state.world.orders[0]
    headers = {**svc.auth, "Idempotency-Key": "link-1"}
    body = {"orderName": order["name"], "zip": "00000"}
    for _ in range(2):
        refused = await svc.client.post("/v1/actions/return-link", json=body, headers=headers)
        assert 400 <= refused.status_code < 500 and "Idempotent-Replayed" not in refused.headers
    # Each refusal reached Loop and is audited; neither was kept under the key.
    assert len(await audit_rows(svc, "return-link")) == 2
    assert await key_row(svc, "link-1") is None


async def test_connection_refused_is_not_kept(svc: Service) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    runner = svc.app.state.actions
    working = runner.loop
    runner.loop = LoopReturnsClient(
        base_url=f"http://127.0.0.1:{port}", token="t" * 16, settings=svc.app.state.settings
    )
    return_id = open_return(svc)
    try:
        down = await add_note(svc, return_id, "reach", "refused-1")
    finally:
        await runner.loop.aclose()
        runner.loop = working
    assert down.status_code == 503 and "outcomeUnknown" not in down.json()["error"]["details"]
    assert await key_row(svc, "refused-1") is None
    retried = await add_note(svc, return_id, "reach", "refused-1")
    assert retried.status_code == 200 and notes_in_loop(svc, return_id, "reach") == 1
    assert [r.ok for r in await audit_rows(svc)] == [True, False]


# --- failures after Loop applied ---------------------------------------------------------


async def test_a_failing_store_write_after_loop_applied_is_audited(
    svc: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(db, "replace_notes", broken)
    return_id = open_return(svc)
    added = await add_note(svc, return_id, "kept in Loop", "after-1")
    # Loop added the note: the answer says so, whatever happened to our copy.
    assert added.status_code == 200 and added.json()["added"] is True
    rows = await audit_rows(svc)
    assert len(rows) == 1 and rows[0].ok and rows[0].result["body"] == added.json()
    kept = await key_row(svc, "after-1")
    assert kept is not None and kept.response == rows[0].result
    no_key = await add_note(svc, return_id, "no key either", None)
    assert no_key.status_code == 200 and len(await audit_rows(svc)) == 2


async def test_a_failing_notes_reread_after_loop_applied_is_audited(svc: Service) -> None:
    return_id = open_return(svc)
    svc.sandbox.state.faults.add("/notes", status=500, method="GET")
    added = await add_note(svc, return_id, "re-read fails", "after-2")
    assert added.status_code == 200
    assert notes_in_loop(svc, return_id, "re-read fails") == 1
    rows = await audit_rows(svc)
    assert len(rows) == 1 and rows[0].ok


async def test_our_own_failure_after_the_call_is_audited_and_kept(
    svc: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = svc.app.state.actions
    real = runner.loop.add_note

    async def then_fail(return_id: str, content: str) -> None:
        await real(return_id, content)
        raise KeyError("a bug after Loop answered")

    monkeypatch.setattr(runner.loop, "add_note", then_fail)
    return_id = open_return(svc)
    failed = await add_note(svc, return_id, "landed", "bug-1")
    assert failed.status_code == 500 and error_code(failed) == "internal_error"
    assert failed.json()["error"]["details"]["outcomeUnknown"] is True
    rows = await audit_rows(svc)
    assert len(rows) == 1 and not rows[0].ok and rows[0].result["status"] == 500
    # Kept: a retry with the key does not add the note a second time.
    again = await add_note(svc, return_id, "landed", "bug-1")
    assert again.status_code == 500 and again.headers["Idempotent-Replayed"] == "true"
    assert notes_in_loop(svc, return_id, "landed") == 1


async def test_an_unrecorded_answer_leaves_the_key_in_progress(
    svc: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc.app.state.actions.keys.policy = KeyPolicy(wait_s=0.1)

    async def broken(*_: Any, **__: Any) -> int:
        raise RuntimeError("database went away")

    monkeypatch.setattr(db, "record_audit", broken)
    return_id = open_return(svc)
    # The 500 as a client sees it (the test transport would re-raise the error).
    transport = httpx.ASGITransport(app=svc.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://loopdesk") as client:
        failed = await client.post(
            f"/v1/returns/{return_id}/notes",
            json={"content": "unrecorded"},
            headers={**svc.auth, "Idempotency-Key": "lost-1"},
        )
    assert failed.status_code == 500 and error_code(failed) == "internal_error"
    monkeypatch.undo()
    kept = await key_row(svc, "lost-1")
    assert kept is not None and kept.status == "in_progress"
    again = await add_note(svc, return_id, "unrecorded", "lost-1")
    assert again.status_code == 409
    assert notes_in_loop(svc, return_id, "unrecorded") == 1


# --- a crash mid-action ------------------------------------------------------------------


async def test_a_crash_mid_action_leaves_a_row_and_a_409(svc: Service) -> None:
    return_id = open_return(svc)
    svc.sandbox.state.faults.add("/note", latency_ms=5000, method="POST", times=1)
    crashed = asyncio.ensure_future(add_note(svc, return_id, "crash", "crash-1"))
    while await key_row(svc, "crash-1") is None:
        await asyncio.sleep(0.02)
    crashed.cancel()  # the process stops between the claim and the answer
    with pytest.raises(asyncio.CancelledError):
        await crashed
    row = await key_row(svc, "crash-1")
    assert row is not None and row.status == "in_progress" and row.started_at.tzinfo
    assert row.response is None

    await age_key(svc, "crash-1", timedelta(minutes=10))
    posts = note_posts(svc)
    later = await add_note(svc, return_id, "crash", "crash-1")
    assert later.status_code == 409 and error_code(later) == "idempotency_outcome_unknown"
    details = later.json()["error"]["details"]
    assert details["outcomeUnknown"] is True and details["action"] == "note.add"
    assert "unknown" in later.json()["error"]["message"]
    assert note_posts(svc) == posts  # not run blindly again


# --- audit filters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        {"action": "note\x00add"},
        {"key": "agent\x00console"},
        {"action": "x" * 65},
        {"since": "9999-12-31T23:59:59-23:59"},
        {"since": "0001-01-01T00:00:00+14:00"},
        {"until": "9999-12-31T23:59:59-23:59"},
        {"since": "not a time"},
    ],
)
async def test_bad_audit_filters_are_422(svc: Service, query: dict[str, str]) -> None:
    response = await svc.client.get("/v1/audit", params=query, headers=svc.auth)
    assert response.status_code == 422, response.text
    assert error_code(response) == "invalid_input"


async def test_audit_filters_at_the_edges_of_time_work(svc: Service) -> None:
    await add_note(svc, open_return(svc), "edge", None)
    for since, count in (("0001-01-01T00:00:00Z", 1), ("9999-12-31T23:59:59+00:00", 0)):
        response = await svc.client.get("/v1/audit", params={"since": since}, headers=svc.auth)
        assert response.status_code == 200 and len(response.json()["items"]) == count


# --- the store's claims ------------------------------------------------------------------


async def test_claims_finish_and_release(svc: Service) -> None:
    async def claim(key: str, fp: str = "f" * 64) -> db.Claim:
        async with svc.store.session() as session:
            return await db.claim_idempotency_key(
                session,
                key_name="agent-console",
                idempotency_key=key,
                action="note.add",
                fingerprint=fp,
                expired_before=utcnow() - timedelta(hours=24),
            )

    claims = await asyncio.gather(*(claim("c-1") for _ in range(20)))
    assert sum(c.claimed for c in claims) == 1
    assert {c.row.id for c in claims} == {claims[0].row.id}
    claim_id = claims[0].row.id
    async with svc.store.session() as session:
        assert await db.release_idempotency_key(session, claim_id)
    again = await claim("c-1")
    assert again.claimed and again.row.status == "in_progress"
    async with svc.store.session() as session:
        response = {"status": 200, "body": {"ok": True}}
        assert await db.finish_idempotency_key(session, again.row.id, response=response, audit_id=7)
        # Settled once: a late release or second finish changes nothing.
        assert not await db.release_idempotency_key(session, again.row.id)
        assert not await db.finish_idempotency_key(session, again.row.id, response={}, audit_id=8)
    done = await key_row(svc, "c-1")
    assert done is not None and done.status == "done" and done.audit_id == 7
    assert done.response == {"status": 200, "body": {"ok": True}} and done.finished_at
    assert not (await claim("c-1")).claimed
