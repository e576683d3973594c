"""A write whose outcome is unknown is checked against Loop before the answer.

The sandbox's faults fire before it applies a write ("a 503 before any write"); "Loop
applied it, then the gateway answered 503" is respx passing the request through to the
sandbox app and answering 503 itself. Through the HTTP API, on SQLite and PostgreSQL
(the fixtures of `test_idempotency`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx

from loopdesk import store as db
from loopdesk.actions.verify import (
    STATE_RULES,
    Verdict,
    VerifyPolicy,
    allowlist_verdict,
    find_allowlist_entry,
    note_verdict,
    state_verdict,
    write_is_over,
)
from loopdesk.errors import LoopUnavailable
from tests import test_idempotency as idem
from tests.test_idempotency import (
    add_note,
    audit_rows,
    error_code,
    key_row,
    note_posts,
    notes_in_loop,
    open_return,
)
from tests.test_service import Service

pytestmark = pytest.mark.usefixtures("instant_retries")

# The same app on SQLite and PostgreSQL as the idempotency tests.
pg = idem.pg
svc = idem.svc

GATEWAY_503 = {"message": "Service Unavailable"}


@pytest.fixture(autouse=True)
def _no_settle_delay(request: pytest.FixtureRequest) -> None:
    """Checks read Loop at once (the pure tests need no app)."""
    if "svc" in request.fixturenames:
        service: Service = request.getfixturevalue("svc")
        service.app.state.actions.verify = VerifyPolicy(settle_s=0)


def posts(service: Service, suffix: str) -> int:
    log = service.sandbox.state.faults.request_log
    return sum(1 for method, path, *_ in log if method == "POST" and path.endswith(suffix))


def details_of(response: httpx.Response) -> dict[str, Any]:
    details: dict[str, Any] = response.json()["error"]["details"]
    return details


@pytest.fixture
def loop_mock() -> Iterator[respx.MockRouter]:
    """respx in front of every client; tests add their routes, then `finish`."""
    with respx.mock(using="httpx", assert_all_called=False) as router:
        yield router


def details_from(service: Service) -> Callable[[httpx.Request], httpx.Response]:
    """`GET /warehouse/return/details` answered from the sandbox's world."""
    world = service.sandbox.state.world

    def details(request: httpx.Request) -> httpx.Response:
        item = world.get_return(request.url.params.get("return_id", ""))
        if item is None:
            return httpx.Response(404, json={"message": "No return found with this ID"})
        return httpx.Response(200, json={**item, "id": int(item["id"])})

    return details


def finish(router: respx.MockRouter, service: Service) -> None:
    """After the test's own routes: the details read from the sandbox's world (when the
    sandbox has no such route of its own), everything else through."""
    served = any(
        str(getattr(r, "path", "")).endswith("/warehouse/return/details")
        for r in service.sandbox.routes
    )
    if not served:
        router.get(url__regex=r"/warehouse/return/details").mock(side_effect=details_from(service))
    router.route().pass_through()


def applied_then(router: respx.MockRouter, service: Service, method: str, path: str) -> None:
    """Requests ending in `path` reach the sandbox, which applies them; the client then
    gets a 503, as from a gateway that gave up waiting for Loop's answer."""
    sandbox = httpx.ASGITransport(app=service.sandbox)

    async def through_then_503(request: httpx.Request) -> httpx.Response:
        await sandbox.handle_async_request(request)
        return httpx.Response(503, json=GATEWAY_503)

    router.route(method=method, url__regex=re.escape(path) + "$").mock(side_effect=through_then_503)


# --- the verdicts, pure ------------------------------------------------------------------

ANSWER = {"ok": True}


def test_a_new_note_with_the_content_is_applied() -> None:
    before = [{"id": 1, "content": "hello"}]
    after = [*before, {"id": 2, "content": " hello "}]
    got = note_verdict(before, after, "hello", ANSWER, write_over=True)
    assert got.verdict is Verdict.APPLIED and got.body == ANSWER
    # An older note saying the same is not this request's.
    assert note_verdict(before, before, "hello", ANSWER, write_over=True).verdict is (
        Verdict.NOT_APPLIED
    )


def test_a_missing_note_proves_nothing_while_loop_may_still_be_writing() -> None:
    assert note_verdict([], [], "x", ANSWER, write_over=False).verdict is Verdict.UNKNOWN
    assert note_verdict([], [], "x", ANSWER, write_over=True).verdict is Verdict.NOT_APPLIED


def test_without_the_notes_before_only_absence_tells() -> None:
    same = [{"id": 5, "content": "x"}]
    assert note_verdict(None, same, "x", ANSWER, write_over=True).verdict is Verdict.UNKNOWN
    assert note_verdict(None, [], "x", ANSWER, write_over=True).verdict is Verdict.NOT_APPLIED


@pytest.mark.parametrize(
    ("action", "before", "after", "over", "verdict"),
    [
        ("cancel", "open", "cancelled", True, Verdict.APPLIED),
        ("cancel", None, "cancelled", True, Verdict.APPLIED),
        ("cancel", "open", "open", True, Verdict.NOT_APPLIED),
        ("cancel", None, "open", True, Verdict.NOT_APPLIED),
        ("cancel", "open", "open", False, Verdict.UNKNOWN),  # a 504: may still move
        ("cancel", "open", "closed", True, Verdict.UNKNOWN),  # someone else moved it
        # Already cancelled (or expired) before: Loop refuses a cancel, nothing changed.
        ("cancel", "cancelled", "cancelled", True, Verdict.NOT_APPLIED),
        ("cancel", "expired", "expired", False, Verdict.NOT_APPLIED),
        ("close", "review", "closed", False, Verdict.APPLIED),
        ("close", "review", "review", True, Verdict.NOT_APPLIED),
        ("flag", "open", "review", True, Verdict.APPLIED),
        ("flag", "open", "open", True, Verdict.NOT_APPLIED),
        ("flag", None, "closed", True, Verdict.UNKNOWN),
        ("process", "open", "closed", True, Verdict.APPLIED),
        # Processing is asynchronous: still open may be queued.
        ("process", "open", "open", True, Verdict.UNKNOWN),
        # Closed, but by processing or by a close? Without the state before, unknown.
        ("process", None, "closed", True, Verdict.UNKNOWN),
        ("process", "closed", "closed", True, Verdict.NOT_APPLIED),
        ("process", "open", "cancelled", True, Verdict.UNKNOWN),
        ("cancel", "open", None, True, Verdict.UNKNOWN),
    ],
)
def test_state_verdicts(
    action: str, before: str | None, after: str | None, over: bool, verdict: Verdict
) -> None:
    assert state_verdict(action, before, after, ANSWER, write_over=over).verdict is verdict


def test_every_return_action_has_a_rule() -> None:
    from loopdesk.actions.run import RETURN_ACTIONS

    assert set(STATE_RULES) == set(RETURN_ACTIONS)


def test_allowlist_verdicts() -> None:
    entries = [{"id": 7, "type": "email", "value": "A@Example.com"}, {"id": 8, "type": "order"}]
    found = find_allowlist_entry(entries, "email", "a@example.com")
    assert found is not None and found["id"] == 7
    assert find_allowlist_entry(entries, "order", "a@example.com") is None
    assert find_allowlist_entry([{"type": "order", "value": "#1"}], "order", "#10") is None
    got = allowlist_verdict(found, complete=False, write_over=False)
    assert got.verdict is Verdict.APPLIED and got.body == {
        "id": "7",
        "type": "email",
        "value": "A@Example.com",
    }
    assert allowlist_verdict(None, complete=True, write_over=True).verdict is Verdict.NOT_APPLIED
    assert allowlist_verdict(None, complete=False, write_over=True).verdict is Verdict.UNKNOWN
    assert allowlist_verdict(None, complete=True, write_over=False).verdict is Verdict.UNKNOWN


def test_only_an_answer_means_the_write_is_over() -> None:
    assert write_is_over(LoopUnavailable("x", status=503))
    assert write_is_over(LoopUnavailable("x", status=500))
    assert not write_is_over(LoopUnavailable("x", status=504))
    assert not write_is_over(LoopUnavailable("x"))  # a timeout: no answer at all


# --- notes -------------------------------------------------------------------------------


async def test_a_note_503_before_any_write_is_not_kept(svc: Service) -> None:
    return_id = open_return(svc)
    svc.sandbox.state.faults.add("/note", status=503, method="POST", times=1)
    failed = await add_note(svc, return_id, "after the outage", "n-503")
    assert failed.status_code == 503 and error_code(failed) == "loop_unavailable"
    details = details_of(failed)
    assert "outcomeUnknown" not in details and details["applied"] is False
    assert details["verification"]["result"] == "not_applied"
    assert await key_row(svc, "n-503") is None

    retried = await add_note(svc, return_id, "after the outage", "n-503")
    assert retried.status_code == 200 and "Idempotent-Replayed" not in retried.headers
    assert notes_in_loop(svc, return_id, "after the outage") == 1
    rows = await audit_rows(svc)  # newest first
    assert [r.ok for r in rows] == [True, False]
    failed_row = rows[1].result
    assert failed_row["upstreamError"]["details"]["upstreamStatus"] == 503
    assert failed_row["upstreamError"]["details"]["outcomeUnknown"] is True
    assert failed_row["verification"]["result"] == "not_applied"


async def test_a_note_applied_then_503_is_a_success_kept_under_the_key(
    svc: Service,
    loop_mock: respx.MockRouter,
) -> None:
    return_id = open_return(svc)
    applied_then(loop_mock, svc, "POST", f"/warehouse/return/{return_id}/note")
    finish(loop_mock, svc)
    added = await add_note(svc, return_id, "landed anyway", "n-applied")
    assert added.status_code == 200, added.text
    body = added.json()
    assert body["added"] is True and body["content"] == "landed anyway"
    assert body["verification"]["result"] == "applied"
    assert body["verification"]["afterError"] == {"code": "loop_unavailable", "upstreamStatus": 503}
    assert notes_in_loop(svc, return_id, "landed anyway") == 1

    again = await add_note(svc, return_id, "landed anyway", "n-applied")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == body
    assert notes_in_loop(svc, return_id, "landed anyway") == 1 and note_posts(svc) == 1
    rows = await audit_rows(svc)
    assert len(rows) == 1 and rows[0].ok
    assert rows[0].result["upstreamError"]["details"]["upstreamStatus"] == 503
    assert rows[0].result["verification"]["result"] == "applied"
    kept = await key_row(svc, "n-applied")
    assert kept is not None and kept.status == "done" and kept.response["body"] == body


async def test_a_note_applied_then_503_without_a_key_is_a_success(
    svc: Service,
    loop_mock: respx.MockRouter,
) -> None:
    return_id = open_return(svc)
    applied_then(loop_mock, svc, "POST", f"/warehouse/return/{return_id}/note")
    finish(loop_mock, svc)
    added = await add_note(svc, return_id, "no key", None)
    assert added.status_code == 200 and added.json()["verification"]["result"] == "applied"
    assert notes_in_loop(svc, return_id, "no key") == 1


async def test_a_failing_check_keeps_the_outcome_unknown(svc: Service) -> None:
    return_id = open_return(svc)
    faults = svc.sandbox.state.faults
    faults.add("/notes", method="GET", times=1)  # the read before the write works
    faults.add("/notes", status=500, method="GET")  # the read after the failure does not
    faults.add("/note", status=503, method="POST", times=1)
    failed = await add_note(svc, return_id, "unknown", "n-unknown")
    assert failed.status_code == 503
    details = details_of(failed)
    assert details["outcomeUnknown"] is True and "applied" not in details
    assert details["verification"]["result"] == "unknown"
    kept = await key_row(svc, "n-unknown")
    assert kept is not None and kept.status == "done"

    faults.clear()
    again = await add_note(svc, return_id, "unknown", "n-unknown")
    assert again.status_code == 503 and again.headers["Idempotent-Replayed"] == "true"
    assert note_posts(svc) == 1 and notes_in_loop(svc, return_id, "unknown") == 0
    rows = await audit_rows(svc)
    assert len(rows) == 1 and rows[0].result["verification"]["result"] == "unknown"


async def test_after_a_504_a_missing_note_is_still_unknown(svc: Service) -> None:
    # A gateway timeout: Loop may still be adding the note when we look.
    return_id = open_return(svc)
    svc.sandbox.state.faults.add("/note", status=504, method="POST", times=1)
    failed = await add_note(svc, return_id, "maybe later", "n-504")
    assert failed.status_code == 503 and details_of(failed)["outcomeUnknown"] is True
    assert details_of(failed)["verification"]["result"] == "unknown"
    again = await add_note(svc, return_id, "maybe later", "n-504")
    assert again.headers["Idempotent-Replayed"] == "true" and note_posts(svc) == 1


# --- return actions ----------------------------------------------------------------------


async def return_action(svc: Service, return_id: str, action: str, key: str) -> httpx.Response:
    headers = {**svc.auth, "Idempotency-Key": key}
    return await svc.client.post(f"/v1/returns/{return_id}/{action}", headers=headers)


@pytest.mark.parametrize(("action", "target"), [("cancel", "cancelled"), ("flag", "review")])
async def test_a_return_action_503_before_any_write_runs_again(
    svc: Service,
    loop_mock: respx.MockRouter,
    action: str,
    target: str,
) -> None:
    finish(loop_mock, svc)
    return_id = open_return(svc)
    svc.sandbox.state.faults.add(f"/{action}", status=503, method="POST", times=1)
    failed = await return_action(svc, return_id, action, f"{action}-1")
    assert failed.status_code == 503
    details = details_of(failed)
    assert "outcomeUnknown" not in details and details["applied"] is False
    assert details["verification"] == {
        "result": "not_applied",
        "reason": "the return is still open",
    }
    assert svc.sandbox.state.world.returns[return_id]["state"] == "open"

    retried = await return_action(svc, return_id, action, f"{action}-1")
    assert retried.status_code == 200 and "Idempotent-Replayed" not in retried.headers
    assert svc.sandbox.state.world.returns[return_id]["state"] == target
    assert posts(svc, f"/{action}") == 2


@pytest.mark.parametrize(
    ("action", "target"), [("cancel", "cancelled"), ("flag", "review"), ("process", "closed")]
)
async def test_a_return_action_applied_then_503_is_a_success(
    svc: Service,
    loop_mock: respx.MockRouter,
    action: str,
    target: str,
) -> None:
    return_id = open_return(svc)
    applied_then(loop_mock, svc, "POST", f"/warehouse/return/{return_id}/{action}")
    finish(loop_mock, svc)
    done = await return_action(svc, return_id, action, f"{action}-2")
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["accepted"] is True and body["verification"]["result"] == "applied"
    assert svc.sandbox.state.world.returns[return_id]["state"] == target
    again = await return_action(svc, return_id, action, f"{action}-2")
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == body
    assert posts(svc, f"/{action}") == 1
    rows = await audit_rows(svc, f"return.{action}")
    assert len(rows) == 1 and rows[0].ok
    assert rows[0].result["upstreamError"]["code"] == "loop_unavailable"


async def test_a_process_not_yet_seen_stays_unknown(
    svc: Service,
    loop_mock: respx.MockRouter,
) -> None:
    finish(loop_mock, svc)
    return_id = open_return(svc)
    svc.sandbox.state.faults.add("/process", status=503, method="POST", times=1)
    failed = await return_action(svc, return_id, "process", "process-3")
    assert failed.status_code == 503 and details_of(failed)["outcomeUnknown"] is True
    again = await return_action(svc, return_id, "process", "process-3")
    assert again.headers["Idempotent-Replayed"] == "true" and posts(svc, "/process") == 1


async def test_a_cancel_of_a_cancelled_return_is_not_applied(
    svc: Service,
    loop_mock: respx.MockRouter,
) -> None:
    finish(loop_mock, svc)
    world = svc.sandbox.state.world
    return_id = next(i for i, r in world.returns.items() if r["state"] == "cancelled")
    svc.sandbox.state.faults.add("/cancel", status=503, method="POST", times=1)
    failed = await return_action(svc, return_id, "cancel", "cancel-5")
    assert failed.status_code == 503 and details_of(failed)["applied"] is False
    # Let go: the retry reaches Loop, which refuses a cancelled return (a state error).
    retried = await return_action(svc, return_id, "cancel", "cancel-5")
    assert retried.status_code == 409 and "Idempotent-Replayed" not in retried.headers
    assert posts(svc, "/cancel") == 2


async def test_a_process_closed_after_an_unread_state_is_unknown(
    svc: Service,
    loop_mock: respx.MockRouter,
) -> None:
    # The read before fails once (then the upstream layer's retries), the one after works.
    served = details_from(svc)
    failures = iter(range(3))

    def first_three_fail(request: httpx.Request) -> httpx.Response:
        if next(failures, None) is not None:
            return httpx.Response(500, json={"message": "Server Error"})
        return served(request)

    details = loop_mock.get(url__regex=r"/return/details\?return_id=\d+$")
    details.mock(side_effect=first_three_fail)
    return_id = open_return(svc)
    applied_then(loop_mock, svc, "POST", f"/warehouse/return/{return_id}/process")
    finish(loop_mock, svc)
    failed = await return_action(svc, return_id, "process", "process-6")
    # Three failed reads before, one after; the sandbox's own `return.updated` webhook to
    # the service may read the return once more, at a moment of its own.
    assert details.call_count in (4, 5)
    assert svc.sandbox.state.world.returns[return_id]["state"] == "closed"
    assert failed.status_code == 503 and details_of(failed)["outcomeUnknown"] is True
    assert "state before was not read" in details_of(failed)["verification"]["reason"]


@pytest.mark.parametrize("action", ["cancel", "flag"])
async def test_a_return_action_whose_check_fails_is_kept_unknown(
    svc: Service,
    loop_mock: respx.MockRouter,
    action: str,
) -> None:
    # (A pattern of its own: respx would merge it with the same one in `finish`.)
    failing = loop_mock.get(url__regex=r"/return/details\?return_id=\d+$")
    failing.respond(500, json={"message": "Server Error"})
    finish(loop_mock, svc)
    return_id = open_return(svc)
    svc.sandbox.state.faults.add(f"/{action}", status=503, method="POST", times=1)
    failed = await return_action(svc, return_id, action, f"{action}-4")
    assert failing.called
    assert failed.status_code == 503
    details = details_of(failed)
    assert details["outcomeUnknown"] is True and details["verification"]["result"] == "unknown"
    again = await return_action(svc, return_id, action, f"{action}-4")
    assert again.status_code == 503 and again.headers["Idempotent-Replayed"] == "true"
    assert posts(svc, f"/{action}") == 1
    assert svc.sandbox.state.world.returns[return_id]["state"] == "open"


# --- allowlist ---------------------------------------------------------------------------


async def allowlist_add(svc: Service, value: str, key: str | None) -> httpx.Response:
    headers = {**svc.auth, **({"Idempotency-Key": key} if key else {})}
    return await svc.client.post(
        "/v1/actions/allowlist", json={"type": "order", "value": value}, headers=headers
    )


def allowlisted(svc: Service, value: str) -> int:
    return sum(1 for e in svc.sandbox.state.world.allowlist if e["value"] == value)


def fill_allowlist(svc: Service, n: int) -> None:
    for i in range(n):
        svc.sandbox.state.world.add_allowlist("email", f"filler-{i}@example.com")


async def test_an_allowlist_503_before_any_write_runs_again(svc: Service) -> None:
    fill_allowlist(svc, 150)  # two pages
    svc.sandbox.state.faults.add("/allowlists", status=503, method="POST", times=1)
    failed = await allowlist_add(svc, "#5001", "al-1")
    assert failed.status_code == 503 and details_of(failed)["applied"] is False
    assert "outcomeUnknown" not in details_of(failed)
    retried = await allowlist_add(svc, "#5001", "al-1")
    assert retried.status_code == 200 and allowlisted(svc, "#5001") == 1


async def test_an_allowlist_entry_applied_then_503_is_found_on_the_last_page(
    svc: Service,
    loop_mock: respx.MockRouter,
) -> None:
    fill_allowlist(svc, 250)  # three pages: the new entry is on the third
    applied_then(loop_mock, svc, "POST", "/api/v1/allowlists")
    finish(loop_mock, svc)
    added = await allowlist_add(svc, "#5002", "al-2")
    assert added.status_code == 200, added.text
    body = added.json()
    entry = next(e for e in svc.sandbox.state.world.allowlist if e["value"] == "#5002")
    assert body["id"] == str(entry["id"]) and body["type"] == "order"
    assert body["verification"]["result"] == "applied"
    again = await allowlist_add(svc, "#5002", "al-2")
    assert again.headers["Idempotent-Replayed"] == "true" and allowlisted(svc, "#5002") == 1
    # Page 1 says how many pages there are, then the newest page is read first.
    pages = [q for m, p, q, _ in svc.sandbox.state.faults.request_log if p.endswith("/allowlists")]
    assert [q for q in pages if q] == ["page=1", "page=3"]


async def test_an_allowlist_longer_than_the_pages_read_is_unknown(svc: Service) -> None:
    svc.app.state.actions.verify = VerifyPolicy(settle_s=0, max_allowlist_pages=2)
    fill_allowlist(svc, 250)
    svc.sandbox.state.faults.add("/allowlists", status=503, method="POST", times=1)
    failed = await allowlist_add(svc, "#5003", "al-3")
    assert details_of(failed)["outcomeUnknown"] is True
    assert details_of(failed)["verification"]["result"] == "unknown"
    assert (await key_row(svc, "al-3")) is not None


async def test_an_allowlist_whose_listing_fails_is_kept_unknown(svc: Service) -> None:
    faults = svc.sandbox.state.faults
    faults.add("/allowlists", status=503, method="POST", times=1)
    faults.add("/allowlists", status=500, method="GET")
    failed = await allowlist_add(svc, "#5004", "al-4")
    assert failed.status_code == 503 and details_of(failed)["outcomeUnknown"] is True
    faults.clear()
    again = await allowlist_add(svc, "#5004", "al-4")
    assert again.status_code == 503 and again.headers["Idempotent-Replayed"] == "true"
    assert allowlisted(svc, "#5004") == 0 and posts(svc, "/allowlists") == 1
    rows = await audit_rows(svc, "allowlist.add")
    assert len(rows) == 1 and rows[0].result["verification"]["result"] == "unknown"


# --- return links ------------------------------------------------------------------------


async def return_link(svc: Service, key: str) -> httpx.Response:
    order = svc.sandbox.state.world.orders[0]
    body = {"orderName": order["name"], "zip": order["zip"]}
    headers = {**svc.auth, "Idempotency-Key": key}
    return await svc.client.post("/v1/actions/return-link", json=body, headers=headers)


async def test_a_return_link_after_a_503_is_asked_for_once_more(svc: Service) -> None:
    svc.sandbox.state.faults.add("/order/link", status=503, method="POST", times=1)
    link = await return_link(svc, "link-1")
    assert link.status_code == 200 and link.json()["url"].startswith("https://")
    assert link.json()["verification"]["result"] == "applied"
    assert posts(svc, "/order/link") == 2


async def test_a_return_link_failing_twice_is_let_go(svc: Service) -> None:
    svc.sandbox.state.faults.add("/order/link", status=503, method="POST", times=2)
    failed = await return_link(svc, "link-2")
    assert failed.status_code == 503 and details_of(failed)["applied"] is False
    assert await key_row(svc, "link-2") is None
    assert posts(svc, "/order/link") == 2
    again = await return_link(svc, "link-2")
    assert again.status_code == 200 and posts(svc, "/order/link") == 3


async def test_the_audit_trail_is_listed(svc: Service) -> None:
    return_id = open_return(svc)
    svc.sandbox.state.faults.add("/note", status=503, method="POST", times=1)
    await add_note(svc, return_id, "trail", None)
    listed = await svc.client.get("/v1/audit", params={"action": "note.add"}, headers=svc.auth)
    (item,) = listed.json()["items"]
    assert item["result"]["verification"]["result"] == "not_applied"
    assert item["result"]["upstreamError"]["code"] == "loop_unavailable"
    async with svc.store.session() as session:
        assert len(await db.list_audit(session)) == 1
