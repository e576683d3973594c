"""`DraftDesk` over the in-process sandbox: whole returns step by step, the links'
word on what is legal, the audit trail, Loop's failures and the merchant's switch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from loopdesk.domain.drafts import Draft
from loopdesk.drafts import DraftDesk, DraftResult
from loopdesk.drafts.verify import submit_verdict
from tests.drafts_harness import Harness, open_harness

ACTOR = "agent-key"
IN_STOCK = "41845504639229"  # #7102's Linen Shirt White / L
SOLD_OUT = "41845504639230"  # Linen Shirt Navy / M
PRICIER = "41845504639629"  # #7103's Rain Jacket Black / L: 15.00 more


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async with open_harness(tmp_path) as harness:
        yield harness


def ok(result: DraftResult) -> dict[str, Any]:
    assert result.ok, result.body
    return result.body


def refused(result: DraftResult, status: int, code: str) -> dict[str, Any]:
    assert not result.ok and result.status == status, result.body
    assert result.error_code == code and result.body["error"]["code"] == code
    details: dict[str, Any] = result.body["error"]["details"]
    return details


async def one_item_draft(desk: DraftDesk, order: str, zip_code: str, line_item: str) -> str:
    """A draft of `order` with `line_item` in it, its reason set: (draft id)."""
    view = ok(await desk.start(order, zip_code, actor=ACTOR))
    view = ok(await desk.add_item(view["draftId"], line_item, actor=ACTOR))
    item = view["returningItems"][0]["id"]
    ok(await desk.set_reason(view["draftId"], item, "1", actor=ACTOR))
    return str(view["draftId"])


async def ready_refund(desk: DraftDesk) -> str:
    """A #7101 draft finalized, refund, mail-in: ready to submit."""
    draft = await one_item_draft(desk, "#7101", "30301", "7101001")
    ok(await desk.finalize(draft, actor=ACTOR))
    ok(await desk.set_credit_type(draft, "refund", actor=ACTOR))
    view = ok(await desk.select_method(draft, "1", actor=ACTOR))
    assert "submit-draft-return" in view["nextSteps"]
    return draft


async def exchange_draft(desk: DraftDesk, order: str, zip_code: str, line: str) -> tuple[str, str]:
    """A draft whose one item is to be exchanged: (draft id, returning item id)."""
    view = ok(await desk.start(order, zip_code, actor=ACTOR))
    draft = view["draftId"]
    item = ok(await desk.add_item(draft, line, actor=ACTOR))["returningItems"][0]["id"]
    ok(await desk.set_reason(draft, item, "2", actor=ACTOR))
    view = ok(await desk.set_type(draft, item, "exchange", actor=ACTOR))
    assert "add-exchange-item" in view["nextSteps"]
    return draft, item


async def test_a_refund_walks_the_links_to_a_submitted_return_every_step_audited(
    h: Harness,
) -> None:
    desk = h.desk
    started = await desk.start("#7101", "30301", actor=ACTOR, conversation_id="conv-1")
    assert started.status == 201
    view = ok(started)
    draft = view["draftId"]
    assert view["orderName"] == "#7101" and view["state"] == "created"
    assert view["currency"] == "USD"
    assert [(i["id"], i["eligible"]) for i in view["lineItems"]] == [
        ("7101001", True),
        ("7101002", True),
    ]
    assert {"id": "5", "name": "Arrived damaged"} in view["reasons"]
    price = view["lineItems"][0]["price"]
    assert price == 7500 and type(price) is int
    assert view["nextSteps"] == ["add-returning-item", "cancel-draft-return"]

    view = ok(await desk.add_item(draft, "7101001", actor=ACTOR))
    item = view["returningItems"][0]["id"]
    assert "finalize-items" not in view["nextSteps"]  # no reason yet
    view = ok(await desk.set_reason(draft, item, "5", actor=ACTOR))
    assert view["returningItems"][0]["reasonId"] == "5"
    assert "finalize-items" in view["nextSteps"]
    view = ok(await desk.finalize(draft, actor=ACTOR))
    assert view["state"] == "items-finalized"
    totals = await desk.totals(draft, actor=ACTOR)
    assert totals.totals is not None and totals.totals.is_difference_covered
    assert ok(totals)["totals"]["amountDue"] == {"amount": 0, "currency": "USD"}
    ok(await desk.set_credit_type(draft, "refund", actor=ACTOR))
    ok(await desk.select_method(draft, "1", actor=ACTOR))
    submitted = await desk.submit(draft, actor=ACTOR)
    view = ok(submitted)
    assert view["state"] == "submitted" and view["returnId"] == submitted.return_id
    assert submitted.return_id and view["statusPageUrl"] == submitted.status_page_url
    assert view["statusPageUrl"].startswith("https://") and view["nextSteps"] == []

    [kept] = await desk.recent(conversation_id="conv-1")
    assert (kept.id, kept.state, kept.return_id) == (draft, "submitted", view["returnId"])
    assert kept.key_name == ACTOR and kept.order_name == "#7101"

    # One audit row per call to Loop (reads aside), in order, with inputs and Loop's result.
    rows = await h.audit()
    assert [r.action for r in rows] == [
        "draft.start",
        "draft.add_item",
        "draft.reason",
        "draft.finalize",
        "draft.credit_type",
        "draft.method",
        "draft.submit",
    ]
    assert all(r.ok and r.key_name == ACTOR for r in rows)
    assert rows[0].inputs == {
        "orderName": "#7101",
        "secondaryInput": "30301",
        "conversationId": "conv-1",
    }
    assert rows[2].inputs == {"draftId": draft, "returningItemId": item, "reasonId": "5"}
    assert rows[2].result["body"]["returningItems"][0]["reasonId"] == "5"
    assert rows[-1].result["status"] == 200
    assert rows[-1].result["body"]["returnId"] == view["returnId"]


async def test_an_exchange_in_stock_is_submitted_and_one_sold_out_is_refused(h: Harness) -> None:
    desk = h.desk
    draft, item = await exchange_draft(desk, "#7102", "60601", "7102001")
    [options] = ok(await desk.get(draft, actor=ACTOR))["exchangeOptions"]
    assert options["returningItemId"] == item
    stock = {v["variantId"]: v["isAvailable"] for v in options["variants"]}
    assert stock[IN_STOCK] is True and stock[SOLD_OUT] is False

    sold_out = await desk.add_exchange(draft, item, SOLD_OUT, actor=ACTOR)
    details = refused(sold_out, 422, "loop_validation_error")
    assert sold_out.loop_errors == ({"message": "variant not available for exchange"},)
    assert details["errors"] == [{"message": "variant not available for exchange"}]
    assert "add-exchange-item" in details["nextSteps"]  # still to do

    view = ok(await desk.add_exchange(draft, item, IN_STOCK, actor=ACTOR))
    assert view["returningItems"][0]["exchangeVariantId"] == IN_STOCK
    ok(await desk.finalize(draft, actor=ACTOR))
    view = ok(await desk.select_method(draft, "3", actor=ACTOR))
    assert "set-credit-type" in view["nextSteps"]  # offered, but nothing goes back as credit
    view = ok(await desk.submit(draft, actor=ACTOR))
    assert view["state"] == "submitted" and view["returnId"]
    audited = await h.audit("draft.exchange")
    assert [r.ok for r in audited] == [False, True]
    assert audited[0].result["body"]["error"]["code"] == "loop_validation_error"


async def test_an_amount_due_keeps_submit_out_of_the_links_until_paid(h: Harness) -> None:
    desk = h.desk
    draft, item = await exchange_draft(desk, "#7103", "94103", "7103001")
    ok(await desk.add_exchange(draft, item, PRICIER, actor=ACTOR))
    ok(await desk.finalize(draft, actor=ACTOR))
    view = ok(await desk.select_method(draft, "1", actor=ACTOR))
    assert "submit-draft-return" not in view["nextSteps"]
    totals = ok(await desk.totals(draft, actor=ACTOR))["totals"]
    assert totals == {
        "amountDue": {"amount": 1500, "currency": "USD"},
        "exchangeFee": None,
        "isDifferenceCovered": False,
    }

    before = h.loop_calls("/submit")
    details = refused(await desk.submit(draft, actor=ACTOR), 409, "draft_step_not_allowed")
    assert details["rel"] == "submit-draft-return"
    assert "submit-draft-return" not in details["nextSteps"] and "totals" in details["nextSteps"]
    assert h.loop_calls("/submit") == before  # never sent
    assert await h.audit("draft.submit") == []

    # The customer pays outside loopdesk: Loop's links offer submit now, and the stored
    # draft's stale links do not stand in the way.
    await h.sandbox_post(f"/_sandbox/draft-returns/{draft}/pay")
    view = ok(await desk.submit(draft, actor=ACTOR))
    assert view["state"] == "submitted" and view["returnId"]


async def test_a_fee_loop_adds_after_the_links_offered_submit_is_loops_refusal_code_kept(
    h: Harness,
) -> None:
    desk = h.desk
    draft, item = await exchange_draft(desk, "#7102", "60601", "7102001")
    ok(await desk.add_exchange(draft, item, IN_STOCK, actor=ACTOR))  # an even swap
    ok(await desk.finalize(draft, actor=ACTOR))
    view = ok(await desk.select_method(draft, "1", actor=ACTOR))
    assert "submit-draft-return" in view["nextSteps"]
    # The shop's exchange fee changes meanwhile: the even swap now leaves 8.00 due.
    await h.sandbox_post("/_sandbox/draft-returns/settings", {"exchange_fee": "8.00"})

    result = await desk.submit(draft, actor=ACTOR)
    details = refused(result, 422, "loop_validation_error")
    assert result.loop_errors == (
        {"code": "draft-return-not-actionable", "message": "draft-return-not-actionable"},
    )
    assert details["errors"][0]["code"] == "draft-return-not-actionable"
    assert not result.outcome_unknown
    # Read again after the refusal: the links no longer offer submit.
    assert "submit-draft-return" not in details["nextSteps"]
    assert result.draft is not None and result.draft.state == "items-finalized"
    totals = ok(await desk.totals(draft, actor=ACTOR))["totals"]
    assert totals["amountDue"]["amount"] == 800 and totals["exchangeFee"]["amount"] == 800
    [row] = await h.audit("draft.submit")
    assert not row.ok and row.result["status"] == 422


async def test_a_final_sale_item_is_shown_ineligible_and_refused_by_loop(h: Harness) -> None:
    desk = h.desk
    view = ok(await desk.start("#7104", "98101", actor=ACTOR))
    items = {i["id"]: (i["eligible"], i["ineligibilityCode"]) for i in view["lineItems"]}
    assert items == {"7104001": (False, "final-sale"), "7104002": (True, None)}
    result = await desk.add_item(view["draftId"], "7104001", actor=ACTOR)
    refused(result, 422, "loop_validation_error")
    assert result.loop_errors == ({"message": "line item is not eligible"},)
    view = ok(await desk.add_item(view["draftId"], "7104002", actor=ACTOR))
    assert [i["orderLineItemId"] for i in view["returningItems"]] == ["7104002"]


async def test_a_step_the_links_do_not_offer_is_409_and_never_sent(h: Harness) -> None:
    desk = h.desk
    draft = ok(await desk.start("#7101", "30301", actor=ACTOR))["draftId"]
    writes = h.loop_calls("/finalize-items") + h.loop_calls("/submit")
    details = refused(await desk.finalize(draft, actor=ACTOR), 409, "draft_step_not_allowed")
    assert details["nextSteps"] == ["add-returning-item", "cancel-draft-return"]
    assert details["rel"] == "finalize-items" and details["state"] == "created"
    refused(await desk.submit(draft, actor=ACTOR), 409, "draft_step_not_allowed")
    # A reason for a returning item the draft does not have.
    refused(await desk.set_reason(draft, "4242", "1", actor=ACTOR), 409, "draft_step_not_allowed")
    assert h.loop_calls("/finalize-items") + h.loop_calls("/submit") == writes
    assert [r.action for r in await h.audit()] == ["draft.start"]


async def test_a_draft_cancelled_midway_offers_nothing_more(h: Harness) -> None:
    desk = h.desk
    draft = await one_item_draft(desk, "#7101", "30301", "7101002")
    view = ok(await desk.cancel(draft, actor=ACTOR))
    assert view["state"] == "cancelled" and view["nextSteps"] == []
    details = refused(
        await desk.add_item(draft, "7101001", actor=ACTOR), 409, "draft_step_not_allowed"
    )
    assert details["nextSteps"] == [] and details["state"] == "cancelled"
    [kept] = await desk.recent()
    assert kept.state == "cancelled"
    assert (await h.audit())[-1].action == "draft.cancel"


async def test_a_submit_failing_before_loop_acts_is_an_error_and_the_draft_stays_open(
    h: Harness,
) -> None:
    desk = h.desk
    draft = await ready_refund(desk)
    h.faults.add("/submit", status=500, times=1)
    result = await desk.submit(draft, actor=ACTOR)
    details = refused(result, 503, "loop_unavailable")
    # Read after the failure: still open, so not applied (Loop answered: the write is over).
    assert details["applied"] is False and "outcomeUnknown" not in details
    assert details["verification"]["result"] == "not_applied"
    assert not result.outcome_unknown
    assert result.draft is not None and result.draft.state == "items-finalized"
    assert "submit-draft-return" in details["nextSteps"]
    view = ok(await desk.submit(draft, actor=ACTOR))  # Loop is back: the retry goes through
    assert view["state"] == "submitted"
    assert [r.ok for r in await h.audit("draft.submit")] == [False, True]


async def test_a_submit_failing_after_loop_made_the_return_is_verified_ok(h: Harness) -> None:
    desk = h.desk
    draft = await ready_refund(desk)
    h.faults.add("/submit", status=500, after=True, times=1)
    result = await desk.submit(draft, actor=ACTOR)
    view = ok(result)
    assert result.status == 200 and result.return_id and view["returnId"] == result.return_id
    assert view["state"] == "submitted" and view["statusPageUrl"]
    assert view["verification"]["result"] == "applied"
    assert view["verification"]["afterError"]["upstreamStatus"] == 500
    [row] = await h.audit("draft.submit")
    assert row.ok and row.result["upstreamError"]["code"] == "loop_unavailable"
    [kept] = await desk.recent()
    assert kept.return_id == result.return_id and kept.state == "submitted"


async def test_a_submit_timing_out_with_the_draft_still_open_is_of_unknown_outcome(
    h: Harness,
) -> None:
    desk = h.desk
    draft = await ready_refund(desk)
    h.faults.add("/submit", status=504, times=1)
    result = await desk.submit(draft, actor=ACTOR)
    details = refused(result, 503, "loop_unavailable")
    assert result.outcome_unknown and details["outcomeUnknown"] is True
    assert details["verification"]["result"] == "unknown"


async def test_a_submit_whose_details_read_fails_still_answers_ok(h: Harness) -> None:
    draft = await ready_refund(h.desk)
    h.faults.add("/warehouse/return/details", status=500)
    result = await h.desk.submit(draft, actor=ACTOR)
    view = ok(result)
    assert view["returnId"] and view["statusPageUrl"] is None


async def test_submit_retried_with_its_idempotency_key_is_answered_once(h: Harness) -> None:
    desk = h.desk
    draft = await ready_refund(desk)
    first = await desk.submit(draft, actor=ACTOR, idempotency_key="submit-1")
    again = await desk.submit(draft, actor=ACTOR, idempotency_key="submit-1")
    assert first.ok and again.ok and again.replayed and not first.replayed
    assert again.body == first.body and again.return_id == first.return_id
    assert h.loop_calls("/submit") == 1
    assert len(await h.audit("draft.submit")) == 1
    # The same key for another request is refused, whatever the links say.
    other = await desk.cancel(draft, actor=ACTOR, idempotency_key="submit-1")
    refused(other, 422, "idempotency_mismatch")


async def test_bad_inputs_are_refused_before_loop(h: Harness) -> None:
    desk = h.desk
    draft = ok(await desk.start("#7101", "30301", actor=ACTOR))["draftId"]
    calls = h.loop_calls()
    for result in (
        await desk.add_item(draft, "abc", actor=ACTOR),
        await desk.add_item("12x", "7101001", actor=ACTOR),
        await desk.set_reason(draft, "757100", "-1", actor=ACTOR),
        await desk.set_type(draft, "757100", "swap", actor=ACTOR),
        await desk.set_credit_type(draft, "cash", actor=ACTOR),
        await desk.select_method(draft, "1.5", actor=ACTOR),
        await desk.start(" ", "30301", actor=ACTOR),
        await desk.start("#7101", "30301", actor=""),
    ):
        refused(result, 422, "invalid_input")
    assert h.loop_calls() == calls
    result = await desk.set_type(draft, "757100", "swap", actor=ACTOR)
    assert result.body["error"]["details"]["allowed"] == ["credit", "exchange"]


async def test_loop_refusing_the_order_keeps_its_code(h: Harness) -> None:
    result = await h.desk.start("#7101", "99999", actor=ACTOR)
    refused(result, 422, "loop_validation_error")
    assert result.loop_errors[0]["code"] == "secondary-input-mismatch"
    assert await h.desk.recent() == []


@pytest.mark.parametrize("status", [401, 403])
async def test_a_shop_without_the_beta_is_told_apart(h: Harness, status: int) -> None:
    """Loop answers 401/403 to a shop whose Return Create API is not on: the guide
    falls back to the link on `loop_unauthorized`."""
    await h.sandbox_post(
        "/_sandbox/draft-returns/settings", {"enabled": False, "disabled_status": status}
    )
    result = await h.desk.start("#7101", "30301", actor=ACTOR)
    assert not result.ok and result.error_code == "loop_unauthorized"
    if status == 403:
        assert result.loop_errors[0]["code"] == "unsupported-feature"


async def test_the_merchants_switch_off_means_links_only(tmp_path: Path) -> None:
    policy = "[returns]\ncreate_in_conversation = false\n"
    async with open_harness(tmp_path, policy=policy) as h:
        assert h.desk.enabled() is False
        for result in (
            await h.desk.start("#7101", "30301", actor=ACTOR),
            await h.desk.get("900123456", actor=ACTOR),
            await h.desk.submit("900123456", actor=ACTOR),
        ):
            details = refused(result, 403, "drafts_disabled")
            assert details == {}
        assert "create_in_conversation" in result.body["error"]["message"]
        assert h.loop_calls() == 0
        response = await h.client.post(
            "/v1/drafts", json={"orderName": "#7101", "secondaryInput": "30301"}
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "drafts_disabled"


async def test_the_guide_is_named_in_the_audit_trail(h: Harness) -> None:
    actor = "guide:conv-77"
    view = ok(await h.desk.start("#7101", "30301", actor=actor, conversation_id="conv-77"))
    ok(await h.desk.add_item(view["draftId"], "7101001", actor=actor))
    assert [r.key_name for r in await h.audit()] == [actor, actor]
    [kept] = await h.desk.recent(conversation_id="conv-77")
    assert kept.key_name == actor


@pytest.mark.parametrize(
    ("draft", "write_over", "verdict"),
    [
        (Draft(id="1", state="submitted", return_id="77"), False, "applied"),
        (Draft(id="1", state="submitted"), True, "unknown"),  # no return named
        (Draft(id="1", state="items-finalized"), True, "not_applied"),
        (Draft(id="1", state="items-finalized"), False, "unknown"),  # a 504: maybe later
        (Draft(id="1", state="expired"), True, "not_applied"),
    ],
)
def test_the_submit_verdict(draft: Draft, write_over: bool, verdict: str) -> None:
    found = submit_verdict(draft, {"returnId": "77"}, write_over=write_over)
    assert found.verdict.value == verdict
    assert (found.body is not None) is (verdict == "applied")
