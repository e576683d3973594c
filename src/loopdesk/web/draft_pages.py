"""The console's draft-return pages (issue 13): start a draft from an order row, then
walk it step by step on `/drafts/{id}`, offered only what the draft's `links` allow.

Like every console page, the data and the steps go through the JSON API
(`/v1/drafts...`) as the signed-in key, which checks the links, calls Loop and audits
each step; the page shows what it answers, Loop's errors included. Each step is a form
(htmx swaps the draft card; without script the answer is a page of its own) carrying
the session's CSRF token and an `Idempotency-Key` drawn when the form was rendered, so
a double click takes the step once. Submit and cancel ask "Yes, ...?" first.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from loopdesk.domain.drafts import CALL_RELS
from loopdesk.web.api import Answer, ConsoleApi, idempotency_key
from loopdesk.web.draft_steps import CONFIRM_TITLES, CONSEQUENCES, STEPS, Step, step_request
from loopdesk.web.draft_view import CREDIT_TYPE_WORDS, DraftPage, Problem
from loopdesk.web.routes import MAX_FORM_FIELD, Visit, parse_emails, signed_in_post, visit

router = APIRouter(include_in_schema=False)
MAX_ID = 40


def draft_url(draft_id: str, emails: str = "") -> str:
    query = "?" + urlencode({"emails": emails}) if emails else ""
    return f"/drafts/{draft_id}{query}"


@dataclass(frozen=True)
class StepResult:
    step: Step
    ok: bool
    problem: Problem | None = None
    chosen: str = ""  # what was chosen, in words, where the view does not show it


def chosen(step: Step, form: dict[str, str], page: DraftPage | None) -> str:
    """The credit type or return method just set (the view names neither)."""
    value = form.get(step.field or "", "").strip()
    if step.name == "credit-type":
        return CREDIT_TYPE_WORDS.get(value, value)
    if step.name == "method" and page is not None:
        found = next((m for m in page.methods if str(m.get("id")) == value), None)
        return str(found.get("name") or value) if found else value
    return ""


async def load_draft(
    api: ConsoleApi, draft_id: str, answer: Answer | None = None
) -> tuple[Answer, DraftPage | None]:
    """The draft (fresh from Loop unless a step just answered it), and its totals read
    apart when Loop offers them and the view carries none."""
    if answer is None or not answer.ok or not answer.body.get("draftId"):
        answer = await api.draft(draft_id)
    if not answer.ok:
        return answer, None
    page = DraftPage(answer.body)
    if page.view.get("totals") is None and page.offers(CALL_RELS["totals"]):
        page.totals_answer = await api.draft_totals(draft_id)
    return answer, page


def _emails(text: str) -> str:
    return " ".join(parse_emails(text[:MAX_FORM_FIELD]))


@router.post("/drafts", response_class=HTMLResponse)
async def start(request: Request) -> Response:
    """Start a draft for an order (from the customer's order row), then its page."""
    current, form, stop = await signed_in_post(request)
    if stop is not None:
        return stop
    emails = _emails(form.get("emails", ""))
    order_name = form.get("order_name", "").strip()
    secondary = form.get("secondary_input", "").strip()
    async with current.api() as api:
        answer = await api.start_draft(
            order_name,
            secondary,
            is_gift=form.get("is_gift") == "1",
            idempotency_key=form.get("idempotency_key") or idempotency_key(),
        )
    if answer.unauthorized:
        return current.to_sign_in("key")
    draft_id = str(answer.body.get("draftId") or "")
    if answer.ok and draft_id:
        target = draft_url(draft_id, emails)
        if current.htmx:  # htmx loads the draft's page
            return current.finish(Response(status_code=200, headers={"HX-Redirect": target}))
        return current.finish(RedirectResponse(target, status_code=303))
    return current.page(
        "_draft_start.html",
        status=answer.status if not answer.ok else 502,
        problem=Problem.of(answer),
        order_name=order_name,
        secondary=secondary,
        query=emails,
        idempotency_key=idempotency_key(),
    )


@router.get("/drafts/{draft_id}", response_class=HTMLResponse)
async def draft_page(request: Request, draft_id: str, emails: str = "") -> Response:
    current = visit(request)
    if not current.session.signed_in:
        return current.to_sign_in()
    async with current.api() as api:
        answer, page = await load_draft(api, draft_id[:MAX_ID])
    if answer.unauthorized:
        return current.to_sign_in("key")
    return _draft_answer(current, draft_id, page, answer, _emails(emails))


@router.post("/drafts/{draft_id}/confirm", response_class=HTMLResponse)
async def confirm(request: Request, draft_id: str) -> Response:
    """Step one of submit or cancel: what is about to happen, and a button that does it."""
    current, form, stop = await signed_in_post(request)
    if stop is not None:
        return stop
    step = STEPS.get(form.get("step", ""))
    if step is None or not step.confirm:
        return current.page("_unknown_action.html", status=422)
    order_name = form.get("order_name", "").strip()
    return current.page(
        "_draft_confirm.html",
        step=step,
        draft_id=draft_id[:MAX_ID],
        title=CONFIRM_TITLES[step.name].format(order=order_name or "?"),
        consequence=CONSEQUENCES[step.name],
        query=_emails(form.get("emails", "")),
        idempotency_key=idempotency_key(),
    )


@router.post("/drafts/{draft_id}/steps/{name}", response_class=HTMLResponse)
async def take_step(request: Request, draft_id: str, name: str) -> Response:
    """One step through the API, then the draft as it is now with the step's outcome."""
    current, form, stop = await signed_in_post(request)
    if stop is not None:
        return stop
    step = STEPS.get(name)
    if step is None or (step.per_item and not form.get("item", "").strip()):
        return current.page("_unknown_action.html", status=422)
    draft_id = draft_id[:MAX_ID]
    method, path, body = step_request(step, draft_id, form)
    async with current.api() as api:
        answer = await api.draft_step(
            method, path, body, form.get("idempotency_key") or idempotency_key()
        )
        shown, page = await load_draft(api, draft_id, answer)
    if answer.unauthorized or shown.unauthorized:
        return current.to_sign_in("key")
    if answer.ok:
        result = StepResult(step, True, chosen=chosen(step, form, page))
    else:
        result = StepResult(step, False, Problem.of(answer))
    return _draft_answer(
        current,
        draft_id,
        page,
        shown,
        _emails(form.get("emails", "")),
        result=result,
        status=200 if answer.ok else answer.status,
    )


def _draft_answer(
    current: Visit,
    draft_id: str,
    page: DraftPage | None,
    answer: Answer,
    emails: str,
    *,
    result: StepResult | None = None,
    status: int | None = None,
) -> Response:
    if page is not None:
        page.emails = emails
    return current.page(
        "draft.html",
        status=status or (200 if page is not None else answer.status),
        draft=page,
        draft_id=draft_id,
        problem=None if page is not None else Problem.of(answer),
        result=result,
        query=emails,
    )
