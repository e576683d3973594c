"""The console's draft-return pages without a browser: a draft started from the
customer's order row, walked step by step on `/drafts/{id}` through the API against the
sandbox's seeded draft orders (#7101-#7104), with only the steps the draft's links
allow offered as buttons, Loop's refusals shown, and the recent drafts listed."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loopdesk.api.app import create_app
from loopdesk.domain.money import minor_money
from loopdesk.web.api import Answer
from loopdesk.web.draft_steps import STEPS
from loopdesk.web.draft_view import LOOP_CODE_WORDS, DraftPage, Problem
from loopdesk.web.routes import templates
from tests.test_web_pages import BASE, KEY, SAME_SITE, Console, _settings

REFUND = "refund.demo@example.com"
EXCHANGE = "exchange.demo@example.com"
UPGRADE = "upgrade.demo@example.com"
FINAL_SALE = "finalsale.demo@example.com"
WHITE_L, NAVY_M = "41845504639229", "41845504639230"
BLACK_L = "41845504639629"
HTMX = {"HX-Request": "true"}


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    app = create_app(_settings(tmp_path, console_secret="a-console-secret"))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client,
    ):
        console = Console(app, client)
        await console.sign_in()
        yield console


@dataclass
class Walk:
    """One draft on its page: each step posted as its form would post it."""

    console: Console
    draft_id: str
    emails: str
    page: str = ""

    async def load(self) -> str:
        response = await self.console.client.get(
            f"/drafts/{self.draft_id}", params={"emails": self.emails}
        )
        assert response.status_code == 200, response.text
        self.page = response.text
        return self.page

    async def step(self, name: str, *, status: int = 200, htmx: bool = True, **fields: str) -> str:
        headers = HTMX if htmx else {}
        response = await self.console.post(
            f"/drafts/{self.draft_id}/steps/{name}", {"emails": self.emails, **fields}, **headers
        )
        assert response.status_code == status, response.text
        self.page = response.text
        return self.page

    @property
    def state(self) -> str:
        found = re.search(r'data-field="draft-state">([^<]+)<', self.page)
        assert found, self.page
        return found.group(1)

    @property
    def steps(self) -> list[str]:
        """The step forms offered (each `data-step` once per form)."""
        return re.findall(r'data-step="([^"]+)"', self.page)

    @property
    def items(self) -> list[str]:
        return re.findall(r'data-returning-item="([^"]+)"', self.page)

    def field(self, name: str) -> str:
        found = re.search(rf'data-field="{name}"[^>]*>(.*?)</', self.page, re.S)
        assert found, f"no {name} in the page"
        return unescape(found.group(1)).strip()


async def start(console: Console, order: str, secondary: str, emails: str) -> Walk:
    response = await console.post(
        "/drafts", {"order_name": order, "secondary_input": secondary, "emails": emails}
    )
    assert response.status_code == 303, response.text
    found = re.fullmatch(r"/drafts/(\d+)\?emails=(.+)", response.headers["location"])
    assert found, response.headers["location"]
    walk = Walk(console, found.group(1), emails)
    await walk.load()
    return walk


def _radio(page: str, value: str) -> str:
    found = re.search(rf'<input type="radio"[^>]*value="{value}"[^>]*>', page)
    assert found, f"no radio {value}"
    return found.group(0)


# --- the whole flow ------------------------------------------------------------------


async def test_a_refund_walks_from_the_order_row_to_a_submitted_return(console: Console) -> None:
    customer = (await console.client.get("/", params={"emails": REFUND})).text
    entry = re.search(
        r'<details class="draft-start" data-start="#7101">.*?</details>', customer, re.S
    )
    assert entry and 'action="/drafts"' in entry.group(0)
    assert 'name="order_name" value="#7101"' in entry.group(0)
    assert "ZIP, email or phone" in entry.group(0)

    walk = await start(console, "#7101", "30301", REFUND)
    assert walk.state == "Open: choosing the items"
    assert (
        "Return for order #7101" in walk.page
        and 'href="/?emails=refund.demo%40example.com"' in walk.page
    )
    # Both items are returnable; nothing else is possible before an item is in.
    assert walk.steps == ["add-item", "add-item"]
    assert walk.page.count('data-eligible="yes"') == 2
    assert "Canvas Sneaker" in walk.page and "Everyday Tote" in walk.page

    await walk.step("add-item", line_item="7101001")
    assert "Done:</strong> Item added" in walk.page and "<html" not in walk.page
    (item,) = walk.items
    assert walk.field("reason") == "not given yet"
    # The reason is required before the items can be confirmed: no finalize yet.
    assert set(walk.steps) == {"add-item", "reason", "type", "remove-item"}
    assert 'data-rel="set-return-reason">Give the reason <span class="badge warn">required' in (
        walk.page
    )

    await walk.step("reason", item=item, reason_id="1")
    assert walk.field("reason") == "Item was too big"
    assert "finalize" in walk.steps
    await walk.step("type", item=item, return_type="credit")
    assert walk.field("return-type") == "Refund or store credit"

    await walk.step("finalize")
    assert walk.state == "Items confirmed: choosing how it goes back"
    assert set(walk.steps) == {"credit-type", "method"}  # items fixed; submit not yet
    assert walk.field("amount-due") == "$0.00"
    assert 'data-field="no-submit"' in walk.page
    assert "Prepaid mail-in label" in walk.page and "Happy Returns" in walk.page

    await walk.step("credit-type", credit_type="refund")
    assert "Credit type set: Refund to the original payment." in walk.page
    await walk.step("method", method_id="1")
    assert "Return method chosen: Prepaid mail-in label." in walk.page
    assert 'name="step" value="submit"' in walk.page  # Loop offers the submit now

    # Submit asks first; nothing is submitted by the question.
    confirm = await console.post(
        f"/drafts/{walk.draft_id}/confirm",
        {"step": "submit", "order_name": "#7101", "emails": REFUND},
        **HTMX,
    )
    assert confirm.status_code == 200
    assert "Confirm: Submit the return for order #7101?" in confirm.text
    assert "Yes, submit the return for order #7101" in confirm.text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', confirm.text)
    assert key
    await walk.load()
    assert walk.state == "Items confirmed: choosing how it goes back"

    await walk.step("submit", idempotency_key=key.group(1))
    assert walk.state == "Submitted"
    return_id = walk.field("return-id")
    assert return_id.isdigit()
    assert re.search(r'href="https://[^"]+"[^>]*data-field="status-page"', walk.page)
    assert walk.steps == [] and "Nothing: the draft has ended" in walk.page
    # A second click on "Yes" replays the first answer: still one return.
    again = await walk.step("submit", idempotency_key=key.group(1))
    assert f'data-field="return-id">{return_id}<' in again

    actions = [(r["action"], r["key"], r["ok"]) for r in await console.audit()]
    for name in ("draft.start", "draft.add_item", "draft.reason", "draft.finalize"):
        assert (name, "env", True) in actions
    assert actions.count(("draft.submit", "env", True)) == 1

    # The customer's page lists the draft with its state; so does the search page.
    customer = (await console.client.get("/", params={"emails": REFUND})).text
    row = re.search(rf'<tr data-draft-row="{walk.draft_id}">.*?</tr>', customer, re.S)
    assert row and "Submitted" in row.group(0) and return_id in row.group(0)
    assert f'<tr data-draft-row="{walk.draft_id}">' in (await console.client.get("/")).text
    other = (await console.client.get("/", params={"emails": EXCHANGE})).text
    assert f'data-draft-row="{walk.draft_id}"' not in other  # another customer's orders


async def test_every_step_also_works_without_script(console: Console) -> None:
    walk = await start(console, "#7101", "30301", REFUND)
    page = await walk.step("add-item", htmx=False, line_item="7101002")
    assert page.startswith("<!doctype html>") and "Done:</strong> Item added" in page
    assert 'action="/drafts/' in page and 'name="csrf"' in page


# --- what each seeded order shows ------------------------------------------------------


async def test_the_exchange_catalog_offers_what_is_in_stock(console: Console) -> None:
    walk = await start(console, "#7102", "60601", EXCHANGE)
    await walk.step("add-item", line_item="7102001")
    (item,) = walk.items
    assert "exchange" not in walk.steps  # Loop lists the catalog once the type is exchange
    await walk.step("type", item=item, return_type="exchange")
    assert "disabled" not in _radio(walk.page, WHITE_L)
    assert "disabled" in _radio(walk.page, NAVY_M)
    navy = re.search(rf'data-variant="{NAVY_M}".*?</div>', walk.page, re.S)
    assert navy and "Sold out" in navy.group(0)

    # A sold-out variant posted anyway: Loop's refusal, in words, and nothing chosen.
    await walk.step("exchange", status=422, item=item, variant_id=NAVY_M)
    assert 'role="alert"' in walk.page and "Not done" in walk.page
    assert walk.field("exchange") == "not chosen yet"

    await walk.step("exchange", item=item, variant_id=WHITE_L)
    assert walk.field("exchange") == "Linen Shirt — White / L"
    assert "checked" in _radio(walk.page, WHITE_L)


async def test_an_amount_due_is_shown_and_the_submit_is_not_offered(console: Console) -> None:
    walk = await start(console, "#7103", "94103", UPGRADE)
    await walk.step("add-item", line_item="7103001")
    (item,) = walk.items
    await walk.step("reason", item=item, reason_id="2")
    await walk.step("type", item=item, return_type="exchange")
    await walk.step("exchange", item=item, variant_id=BLACK_L)
    await walk.step("finalize")
    await walk.step("method", method_id="3")
    assert walk.field("amount-due") == "$15.00"
    assert "The customer owes $15.00" in walk.page
    assert 'value="submit"' not in walk.page and 'data-field="no-submit"' in walk.page

    # Posted anyway (an old page): refused with the API's error, the draft unchanged.
    await walk.step("submit", status=409)
    assert 'data-error="draft_step_not_allowed"' in walk.page
    assert "not offered for this draft now" in walk.page
    assert walk.state == "Items confirmed: choosing how it goes back"

    # Once the customer pays, Loop offers the submit.
    paid = await console.client.post(
        f"/sandbox/_sandbox/draft-returns/{walk.draft_id}/pay",
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert paid.status_code < 300, paid.text
    await walk.load()
    assert 'value="submit"' in walk.page


async def test_a_final_sale_item_says_why_and_cannot_be_added(console: Console) -> None:
    walk = await start(console, "#7104", "98101", FINAL_SALE)
    scarf = re.search(r'<tr data-line-item="7104001" data-eligible="no">.*?</tr>', walk.page, re.S)
    assert scarf and "Final sale: it cannot be returned" in scarf.group(0)
    assert "<form" not in scarf.group(0)
    shorts = re.search(
        r'<tr data-line-item="7104002" data-eligible="yes">.*?</tr>', walk.page, re.S
    )
    assert shorts and 'data-step="add-item"' in shorts.group(0)

    await walk.step("add-item", status=422, line_item="7104001")
    assert 'role="alert"' in walk.page and "line item is not eligible" in walk.page
    assert walk.items == []


async def test_a_draft_is_cancelled_after_its_confirmation(console: Console) -> None:
    walk = await start(console, "#7101", "30301", REFUND)
    await walk.step("add-item", line_item="7101001")
    confirm = await console.post(
        f"/drafts/{walk.draft_id}/confirm", {"step": "cancel", "order_name": "#7101"}
    )
    assert confirm.status_code == 200 and "<html" in confirm.text  # without script: a page
    assert "Yes, cancel the draft return for order #7101" in confirm.text
    assert f'href="/drafts/{walk.draft_id}"' in confirm.text  # "Back"
    await walk.step("cancel")
    assert walk.state == "Cancelled" and walk.steps == []
    assert 'value="cancel"' not in walk.page
    await walk.step("finalize", status=409)
    assert 'data-error="draft_step_not_allowed"' in walk.page


async def _ready_refund(console: Console) -> Walk:
    """#7101 with one item refunded by mail: Loop offers the submit."""
    walk = await start(console, "#7101", "30301", REFUND)
    await walk.step("add-item", line_item="7101001")
    (item,) = walk.items
    await walk.step("reason", item=item, reason_id="5")
    await walk.step("finalize")
    await walk.step("credit-type", credit_type="gift")
    await walk.step("method", method_id="1")
    assert 'value="submit"' in walk.page
    return walk


async def _fault(console: Console, **fault: Any) -> None:
    response = await console.client.post(
        "/sandbox/_sandbox/faults", json=fault, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert response.status_code < 300, response.text


async def test_a_submit_whose_answer_was_lost_shows_the_return_loop_made(
    console: Console, instant_retries: None
) -> None:
    walk = await _ready_refund(console)
    await _fault(console, path_contains="/submit", status=500, after=True)
    await walk.step("submit")
    assert walk.state == "Submitted" and walk.field("return-id").isdigit()
    assert "Loop's answer was lost; reading the draft shows it applied" in walk.page


async def test_a_submit_that_fails_says_so_and_the_draft_can_be_submitted_again(
    console: Console, instant_retries: None
) -> None:
    walk = await _ready_refund(console)
    await _fault(console, path_contains="/submit", status=500)
    page = await walk.step("submit", status=503)
    assert 'role="alert"' in page and "Not done" in page
    assert walk.state == "Items confirmed: choosing how it goes back"
    assert 'value="submit"' in page  # still offered: nothing happened in Loop
    await console.client.delete(
        "/sandbox/_sandbox/faults", headers={"Authorization": f"Bearer {KEY}"}
    )
    await walk.step("submit")
    assert walk.state == "Submitted"


# --- refusals ------------------------------------------------------------------------


async def test_a_draft_that_cannot_start_says_why(console: Console) -> None:
    fields = {"order_name": "#7101", "secondary_input": "00000", "emails": REFUND}
    htmx = await console.post("/drafts", fields, **HTMX)
    assert htmx.status_code == 422 and "<html" not in htmx.text
    assert 'role="alert"' in htmx.text and "secondary-input-mismatch" in htmx.text
    page = await console.post("/drafts", fields)
    assert page.status_code == 422 and "<html" in page.text
    assert 'name="secondary_input"' in page.text and 'value="00000"' in page.text  # try again
    assert "Back to the customer" in page.text
    started = await console.post("/drafts", {**fields, "secondary_input": "30301"}, **HTMX)
    assert re.fullmatch(r"/drafts/\d+\?emails=.+", started.headers["hx-redirect"])


async def test_a_shop_that_sends_links_only_is_told_so(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("[returns]\ncreate_in_conversation = false\n")
    app = create_app(_settings(tmp_path, console_secret="s", policy_file=policy))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client,
    ):
        console = Console(app, client)
        await console.sign_in()
        fields = {"order_name": "#7101", "secondary_input": "30301", "emails": REFUND}
        response = await console.post("/drafts", fields, **HTMX)
        assert response.status_code == 403
        assert 'data-error="drafts_disabled"' in response.text
        assert "send a return link instead" in response.text
        # The customer page says so up front, and offers no "Create a return".
        page = (await client.get("/", params={"emails": REFUND})).text
        assert 'data-field="drafts-disabled"' in page
        assert 'class="draft-start"' not in page


async def test_draft_pages_need_a_session_and_its_csrf_token(console: Console) -> None:
    walk = await start(console, "#7101", "30301", REFUND)
    path = f"/drafts/{walk.draft_id}/steps/add-item"
    forged = await console.client.post(path, data={"line_item": "7101001"}, headers=SAME_SITE)
    assert forged.status_code == 403
    cross = await console.client.post(
        path,
        data={"line_item": "7101001", "csrf": await console.csrf()},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    assert (await walk.load()) and walk.items == []
    unknown = await console.post(f"/drafts/{walk.draft_id}/steps/delete-everything", {})
    assert unknown.status_code == 422
    no_item = await console.post(f"/drafts/{walk.draft_id}/steps/reason", {"reason_id": "1"})
    assert no_item.status_code == 422
    missing = await console.client.get("/drafts/123456789")
    assert missing.status_code == 404 and 'role="alert"' in missing.text
    await console.client.post(
        "/console/sign-out", data={"csrf": await console.csrf()}, headers=SAME_SITE
    )
    out = await console.client.get(f"/drafts/{walk.draft_id}")
    assert out.status_code == 303 and out.headers["location"] == "/"


# --- the page offers what the links allow, and nothing else --------------------------


def _render(view: dict[str, Any]) -> str:
    template = templates.env.get_template("parts/draft.html")
    return template.render(
        draft=DraftPage(view), draft_id=view["draftId"], csrf="t", query="", result=None
    )


def _view(links: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "draftId": "900",
        "state": "some-state-loop-named",
        "orderName": "#1",
        "currency": "EUR",
        "lineItems": [
            {"id": "11", "title": "Shirt", "variantTitle": "M", "price": 12345, "eligible": True},
            {
                "id": "12",
                "title": "Hat",
                "price": 500,
                "eligible": False,
                "ineligibilityCode": "some-new-code",
            },
            {"id": "13", "title": "Scarf", "price": 0, "eligible": True},
        ],
        "returningItems": [
            {"id": "71", "orderLineItemId": "11", "returnType": "credit", "reasonId": None},
            {"id": "72", "orderLineItemId": "99", "returnType": "exchange"},
        ],
        "reasons": [{"id": "1", "name": "Too big"}],
        "exchangeOptions": [],
        "returnMethodOptions": [],
        "totals": None,
        "links": links,
        **extra,
    }


def test_only_the_links_steps_are_offered_each_on_its_own_item() -> None:
    reason_72 = {
        "rel": "set-return-reason",
        "href": "/api/v1/draft-returns/900/returning-items/72/return-reason",
        "method": "POST",
        "isRequired": True,
    }
    loop_later = {
        "rel": "set-address",
        "href": "/api/v1/draft-returns/900/address",
        "method": "POST",
    }
    page = _render(_view([reason_72, loop_later]))
    assert re.findall(r'data-step="([^"]+)"', page) == ["reason"]
    assert 'name="item" value="72"' in page and 'name="item" value="71"' not in page
    assert 'data-rel="set-address">Set address' in page  # listed, never a button
    assert "Some state loop named" in page  # a state Loop names is shown as it came
    assert "Some new code" in page and "€123.45" in page
    # An item link found by the view's returningItemId when it has one.
    tagged = {**reason_72, "href": "/v1/drafts/900/items/x/reason", "returningItemId": "71"}
    assert 'name="item" value="71"' in _render(_view([tagged]))
    none = _render(_view([]))
    assert re.findall(r'data-step="([^"]+)"', none) == [] and 'value="submit"' not in none
    everything = [
        {"rel": s.rel, "href": "/api/v1/draft-returns/900/returning-items/71/x"}
        for s in STEPS.values()
    ]
    offered = set(re.findall(r'data-step="([^"]+)"', _render(_view(everything))))
    # Every step but exchange (no catalog for it) and submit/cancel (asked first).
    assert offered == set(STEPS) - {"exchange", "submit", "cancel"}


def test_loops_errors_are_put_in_words_once_each() -> None:
    answer = Answer(
        422,
        {
            "error": {
                "code": "loop_validation_error",
                "message": "draft-return-not-actionable",
                "details": {
                    "errors": [
                        {
                            "code": "draft-return-not-actionable",
                            "message": "draft-return-not-actionable",
                        },
                        {"code": None, "message": "draft-return-not-actionable"},
                        {"code": "something-new", "message": ""},
                        {"code": "order-not-found", "message": "No order #9 here."},
                    ],
                    "outcomeUnknown": True,
                },
            }
        },
    )
    problem = Problem.of(answer)
    assert problem.loop_errors == (
        ("draft-return-not-actionable", LOOP_CODE_WORDS["draft-return-not-actionable"]),
        ("something-new", "Something new"),
        ("order-not-found", "No order #9 here."),
    )
    assert problem.outcome_unknown and problem.code == "loop_validation_error"
    page = templates.env.get_template("parts/draft_problem.html").render(problem=problem, what="No")
    assert "amount is due and not paid" in page and "Loop may have taken the step" in page
    disabled = Problem.of(Answer(403, {"error": {"code": "drafts_disabled", "message": "off"}}))
    assert "send a return link instead" in disabled.plain


def test_minor_units_are_shifted_by_the_currencys_exponent_without_floats() -> None:
    assert minor_money(1500, "USD") == "$15.00"
    assert minor_money(-250, "usd") == "-$2.50"
    assert minor_money(1500, "JPY") == "¥1,500"
    assert minor_money(1, "KWD") == "0.001 KWD"
    assert minor_money(123456789, "EUR") == "€1,234,567.89"
    assert minor_money(None, "USD") == "—"
    assert minor_money("15.00", "USD") == "15.00"  # not minor units: shown as it came
    assert minor_money(True, "USD") == "True"


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_minor_units_keep_every_digit(amount: int) -> None:
    shown = minor_money(amount, "USD")
    assert Decimal(shown.replace("$", "").replace(",", "")) * 100 == amount
