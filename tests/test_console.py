"""The console in a real browser: Chromium (Debian's package) driven by Playwright against
`loopdesk serve` with the built-in sandbox, the way `make run` starts it.

Sign in with a key from `loopdesk keys create`, search the demo customer, open a return
and check every amount shown against the lookup's JSON, run an action through its
confirmation and see it in the audit trail, talk to the guide, check accessibility with
axe-core (vendored under tests/vendor) on a desktop and a phone-sized window, and save
screenshots of both under tests/artifacts/console/.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopdesk.domain.money import money
from tests.conftest import REPO

CHROMIUM = os.environ.get("LOOPDESK_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "artifacts" / "console"
AXE = REPO / "tests" / "vendor" / "axe.min.js"
DEMO = "primary@email.com secondary@email.com"
ZONE = "America/New_York"


def _unavailable(reason: str) -> None:
    """No browser here: skipped on a developer's machine, a failure in CI (`.ci/run`
    installs Chromium, so a CI without it has lost the test)."""
    if os.environ.get("CI"):
        raise RuntimeError(f"the console's browser test cannot run in CI: {reason}")
    pytest.skip(reason, allow_module_level=True)


try:
    import playwright.sync_api as playwright_api
except ImportError:  # pragma: no cover - the test extras install it
    _unavailable("playwright is not installed: pip install -e '.[test]'")
if not Path(CHROMIUM).exists():  # pragma: no cover - .ci/run installs it
    _unavailable(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (or LOOPDESK_CHROMIUM)")

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """`loopdesk serve` on a free port, its own database, and a key made for it."""
    home = tmp_path_factory.mktemp("console")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPDESK_")}
    env["LOOPDESK_DATABASE_URL"] = f"sqlite+aiosqlite:///{home}/loopdesk.db"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
    env["LOOPDESK_HTTP_RETRY_ATTEMPTS"] = "1"  # a faulted Loop fails at once (the stale check)
    command = [sys.executable, "-m", "loopdesk"]
    key = subprocess.run(
        [*command, "keys", "create", "console-test"],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    port = _free_port()
    log = (home / "serve.log").open("w")
    server = subprocess.Popen(
        [*command, "serve", "--port", str(port)], env=env, cwd=home, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((home / "serve.log").read_text())
            time.sleep(0.1)
        yield base, key
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
        # Neither the key nor a customer's full address was written to the service's log.
        written = (home / "serve.log").read_text()
        assert key not in written
        assert not [e for e in DEMO.split() if e in written]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        # --no-sandbox: the test may run as root (CI does), where Chromium refuses its sandbox.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def _axe(page: Any, where: str) -> None:
    """No serious or critical accessibility violation (axe-core, WCAG 2.x A and AA)."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """() => axe.run(document, {runOnly: {type: "tag",
             values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}})"""
    )
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{where}: {bad}"


def _lookup(base: str, key: str) -> dict[str, Any]:
    response = httpx.get(
        f"{base}/v1/customers/lookup",
        params=[("email", e) for e in DEMO.split()],
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def test_console_end_to_end(service: tuple[str, str], browser: Any) -> None:
    base, key = service
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    expect = playwright_api.expect
    expect.set_options(timeout=15_000)  # two shared cores: be patient, not flaky
    # The CSP is bypassed for the test's own script only (axe-core, injected inline).
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, timezone_id=ZONE, locale="en-US", bypass_csp=True
    )
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # Sign in: the key is posted once, then kept encrypted in an HttpOnly cookie.
    page.goto(base + "/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    _axe(page, "sign-in page")
    page.get_by_label("API key").fill("not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not a valid")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Signed in as")).to_contain_text("console-test")
    (cookie,) = [c for c in context.cookies() if c["name"] == "loopdesk_console"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert key not in cookie["value"]

    # Search by keyboard: the two addresses, Enter.
    page.get_by_label("Customer email addresses").fill(DEMO)
    page.keyboard.press("Enter")
    data = _lookup(base, key)
    returns = data["returns"]
    expect(page.get_by_role("heading", name=f"{len(returns)} Returns")).to_be_visible()
    expect(page.get_by_role("heading", name=f"{len(data['orders'])} Orders")).to_be_visible()
    expect(page.locator("[data-field=last-fetched]")).to_contain_text("ago")

    # The routing decision with its trace: the demo's refund has waited for weeks.
    routing = page.locator("#routing")
    expect(routing.locator("[data-field=queue]")).to_contain_text("returns-priority")
    expect(routing.locator("[data-fact=refund_pending_days]")).to_have_text(
        str(data["facts"]["refund_pending_days"])
    )
    expect(routing.locator(".trace .result-matched").first).to_contain_text("refund")

    # Expand a return with a refund and an exchange (keyboard: focus its summary, Enter).
    chosen = next(r for r in returns if r["exchange"]["items"] and r["return"]["items"])
    drawer = page.locator(f"#return-{chosen['id']}")
    drawer.locator("summary").focus()
    page.keyboard.press("Enter")
    expect(drawer.locator("[data-field=rma]")).to_have_text(chosen["id"])
    cur = chosen["currency"]
    shown = {
        "return-products": chosen["return"]["productTotal"],
        "return-discounts": chosen["return"]["discountTotal"],
        "return-tax": chosen["return"]["taxTotal"],
        "return-total": chosen["return"]["total"],
        "exchange-products": chosen["exchange"]["productTotal"],
        "exchange-discounts": chosen["exchange"]["discountTotal"],
        "exchange-tax": chosen["exchange"]["taxTotal"],
        "exchange-total": chosen["exchange"]["total"],
        "handling-fee": chosen["costBreakdown"]["handlingFee"],
        "refund": chosen["costBreakdown"]["refund"],
        "upsell": chosen["costBreakdown"]["upsell"],
        "gift-card": chosen["costBreakdown"]["giftCardAmount"],
    }
    for field, amount in shown.items():
        expect(drawer.locator(f"[data-field={field}]")).to_have_text(money(amount, cur))
    assert cur == "USD" and re.fullmatch(r"-?\$[\d,]+\.\d\d", money(chosen["return"]["total"], cur))
    prices = drawer.locator("[data-field=item-price]")
    expect(prices).to_have_count(len(chosen["return"]["items"]))
    for index, item in enumerate(chosen["return"]["items"]):
        expect(prices.nth(index)).to_have_text(money(item["cost"]["price"], cur))
    # Dates in the viewer's zone, not UTC.
    expect(drawer.locator("[data-field=updated] time")).to_have_text(re.compile(r"\bE[SD]T$"))
    out_of_stock = next(
        r for r in returns if any(i["isOutOfStock"] for i in r["exchange"]["items"])
    )
    page.locator(f"#return-{out_of_stock['id']} summary").click()
    expect(page.locator(f"#return-{out_of_stock['id']} [data-field=out-of-stock]")).to_be_visible()

    _axe(page, "customer page, desktop")
    page.screenshot(path=str(ARTIFACTS / "desktop.png"), full_page=True)

    # An action by keyboard, with its confirmation step, then its audit row.
    note = f"Checked by the console test {time.time_ns()}"
    drawer.get_by_label("Note").focus()
    page.keyboard.type(note)
    page.keyboard.press("Tab")  # to "Add note…"
    page.keyboard.press("Enter")
    confirm = drawer.locator(".confirm")
    expect(confirm).to_contain_text(f"Add a note to return {chosen['id']}")
    expect(page.locator("#audit [data-audit='note.add']")).to_have_count(0)
    yes = confirm.get_by_role("button", name=re.compile("^Yes, add a note"))
    expect(yes).to_be_focused()  # the confirmation takes the focus
    page.keyboard.press("Enter")
    expect(drawer.locator(".result.ok")).to_contain_text("Done")
    audit_row = page.locator("#audit [data-audit='note.add']")
    expect(audit_row).to_have_count(1)
    expect(audit_row).to_contain_text("console-test")
    expect(audit_row).to_contain_text(chosen["id"])
    # Back out of a confirmation: nothing runs.
    drawer.get_by_role("button", name="Flag…").click()
    drawer.locator(".confirm").get_by_role("link", name="Back").click()
    expect(drawer.locator(".confirm")).to_have_count(0)
    expect(page.locator("#audit li")).to_have_count(1)

    # A chat turn with the guide, as this customer, on SMS.
    chat = page.locator("#chat")
    chat.get_by_label("Channel").select_option("sms")
    chat.get_by_label("Message").fill("where is my return?")
    chat.get_by_role("button", name="Send").click()
    reply = chat.locator(".from-guide").last
    # The guide's first turn in a process also trains its classifier: allow for it.
    expect(reply).to_have_attribute("data-intent", "return_status", timeout=30_000)
    expect(reply.locator(".reply")).not_to_be_empty()
    expect(chat.get_by_label("Message")).to_have_value("")
    expect(chat.get_by_label("Message")).to_be_focused()

    # Refresh: the note is in Loop (the sandbox) now; the conversation stays.
    page.evaluate("document.getElementById('returns').dataset.before = 'refresh'")
    page.get_by_role("button", name="Refresh from Loop").click()
    expect(page.locator("#returns[data-before]")).to_have_count(0)  # the card was replaced
    expect(page.locator("[data-field=last-fetched]")).to_contain_text("less than a minute ago")
    page.locator(f"#return-{chosen['id']} summary").click()
    notes = page.locator(f"#return-{chosen['id']} .notes")
    expect(notes).to_be_visible()
    expect(notes).to_contain_text(note)
    expect(chat.locator(".from-guide")).to_have_count(1)

    # A phone-sized window: one column, nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px screen"
    _axe(page, "customer page, narrow")
    page.screenshot(path=str(ARTIFACTS / "narrow.png"), full_page=True)

    # Loop failing: a refresh shows what loopdesk kept, marked stale.
    page.set_viewport_size({"width": 1280, "height": 900})
    auth = {"Authorization": f"Bearer {key}"}
    faults = f"{base}/sandbox/_sandbox/faults"
    httpx.post(faults, json={"path_contains": "/api/v2/returns", "status": 500}, headers=auth)
    try:
        page.get_by_role("button", name="Refresh from Loop").click()
        expect(page.locator(".freshness .badge.stale")).to_have_text("Stale")
        expect(page.locator(".freshness")).to_contain_text("loop_unavailable")
        expect(page.get_by_role("heading", name=f"{len(returns)} Returns")).to_be_visible()
        page.locator(".freshness").screenshot(path=str(ARTIFACTS / "stale.png"))
    finally:
        httpx.delete(faults, headers=auth)

    # Nothing fetched from anywhere but loopdesk; the key in no URL and no storage.
    assert all(url.startswith(base + "/") for url in requested), requested
    assert not any(key in url for url in requested)
    stored = page.evaluate("JSON.stringify([localStorage, sessionStorage])")
    assert key not in stored
    assert key not in page.content()
    assert not errors, errors

    # Sign out: the cookie goes, and the console asks for a key again.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    context.close()


def test_console_walks_a_refund_draft_to_a_return(service: tuple[str, str], browser: Any) -> None:
    """From the order row to a submitted return, clicking only what the draft's links offer."""
    base, key = service
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    expect = playwright_api.expect
    expect.set_options(timeout=15_000)
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, timezone_id=ZONE, locale="en-US", bypass_csp=True
    )
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base + "/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Customer email addresses").fill("refund.demo@example.com")
    page.keyboard.press("Enter")

    # The order row's entry: the ZIP, then the draft's own page.
    order = page.locator("[data-order='#7101']")
    order.get_by_text("Create a return").click()
    order.get_by_label("ZIP, email or phone").fill("30301")
    order.get_by_role("button", name="Start the return").click()
    expect(page.get_by_role("heading", name=re.compile("Return for order #7101"))).to_be_visible()
    draft_id = page.locator("#draft").get_attribute("data-draft")
    assert draft_id and page.url.startswith(f"{base}/drafts/{draft_id}")
    state = page.locator("[data-field=draft-state]")
    expect(state).to_have_text("Open: choosing the items")
    expect(page.get_by_role("button", name="Confirm the items")).to_have_count(0)
    _axe(page, "draft page, choosing items")

    page.get_by_role("button", name=re.compile("^Add Canvas Sneaker")).click()
    done = page.locator(".result.ok")
    expect(done).to_contain_text("Item added")
    expect(done).to_be_focused()  # the outcome takes the focus, for screen readers
    page.get_by_label(re.compile("^Reason for Canvas Sneaker")).select_option(
        label="Item was too big"
    )
    page.get_by_role("button", name=re.compile("^Set the reason")).click()
    expect(page.locator("[data-field=reason]")).to_have_text("Item was too big")
    page.get_by_role("button", name="Confirm the items").click()
    expect(state).to_have_text("Items confirmed: choosing how it goes back")
    expect(page.get_by_role("button", name="Submit the return…")).to_have_count(0)
    page.get_by_label("Refund to the original payment").check()
    page.get_by_role("button", name="Set the credit type").click()
    expect(done).to_contain_text("Credit type set")
    page.get_by_label("Prepaid mail-in label").check()
    page.get_by_role("button", name="Choose the return method").click()
    expect(done).to_contain_text("Return method chosen")
    _axe(page, "draft page, ready to submit")
    page.set_viewport_size({"width": 390, "height": 844})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the draft page is {width}px wide on a 390px screen"
    _axe(page, "draft page, narrow")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Submit asks first, by keyboard: the confirmation takes the focus.
    page.get_by_role("button", name="Submit the return…").click()
    yes = page.get_by_role("button", name="Yes, submit the return for order #7101")
    expect(yes).to_be_focused()
    page.keyboard.press("Enter")
    expect(state).to_have_text("Submitted")
    return_id = page.locator("[data-field=return-id]")
    expect(return_id).to_have_text(re.compile(r"^\d+$"))
    expect(page.locator("[data-field=status-page]")).to_have_attribute(
        "href", re.compile("^https://")
    )
    expect(page.locator("form[data-step]")).to_have_count(0)  # nothing more to do
    _axe(page, "draft page, submitted")
    page.screenshot(path=str(ARTIFACTS / "draft.png"), full_page=True)
    view = httpx.get(
        f"{base}/v1/drafts/{draft_id}", headers={"Authorization": f"Bearer {key}"}, timeout=30
    ).json()
    assert view["state"] == "submitted" and return_id.inner_text() == view["returnId"]

    # Back on the customer's page, the draft is listed with its state.
    page.get_by_role("link", name="Back to the customer").click()
    row = page.locator(f"[data-draft-row='{draft_id}']")
    expect(row.locator("[data-field=draft-state]")).to_have_text("Submitted")
    assert all(url.startswith(base + "/") for url in requested), requested
    assert not errors, errors
    context.close()
